export { loadConfig, options, ConfigError, type Config } from './config/defaults.js';
export { createCore, type Core, ADMIN_API, BOOTSTRAP_CLIENT_ID } from './core.js';
export { createApp } from './http/app.js';
export { GatehouseError } from './errors.js';
