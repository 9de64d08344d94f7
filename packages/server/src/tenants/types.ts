export interface TenantRecord {
  id: string;
  displayName: string;
  createdAt: number;
}

/** Tenant persistence, owned by the tenants capability. */
export interface TenantStore {
  /** False when a tenant with that id exists already. */
  create(tenant: TenantRecord): Promise<boolean>;
  get(id: string): Promise<TenantRecord | undefined>;
  list(): Promise<TenantRecord[]>;
}
