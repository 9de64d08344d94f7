export { compileCaveats, type CaveatEvaluator } from './compile.js';
export { caveatErrors } from './errors.js';
export { IPAddress, parseIPAddress } from './ip-address.js';
export { parseParameterType, type ParameterType } from './parameter-types.js';
export { parseDuration, parseTimestamp } from './time.js';
