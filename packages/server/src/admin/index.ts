export { adminRoutes } from './routes.js';
export { createAdminGuard } from './auth.js';
