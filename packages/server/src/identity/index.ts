export { createUserService, emailKeyOf, type NewUser, type User, type UserPage, type UserProfile, type UserService, type UserUpdate, type UserWithPassword } from './users.js';
export { userErrors } from './errors.js';
export type { UserRecord, UserStore } from './store-types.js';
export { userRoutes, userView } from './routes.js';
export { checkPasswordPolicy, createPasswordHasher, defaultPasswordHashParams, PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, type PasswordHasher, type PasswordHashParams, type PasswordVerification } from './passwords.js';
export { passwordErrors } from './password-errors.js';
export { accountKeyOf, createLoginThrottle, type LoginAdmission, type LoginAttempt, type LoginThrottle, type LoginThrottleOptions, type LockReason } from './brute-force.js';
export { bruteForceErrors } from './brute-force-errors.js';
export { claimsOf, createSignInAccounts, type SignInDeps, type SignInUser, type SignInUserStore } from './sign-in.js';
