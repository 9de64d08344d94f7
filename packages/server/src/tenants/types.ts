export interface TenantRecord {
  id: string;
  displayName: string;
  /** The media type of the tenant's logo, when it has one (served from our own origin). */
  logoType?: string | null;
  createdAt: number;
}

export interface TenantLogo {
  type: string;
  data: Buffer;
}

/** Tenant persistence, owned by the tenants capability. */
export interface TenantStore {
  /** False when a tenant with that id exists already. */
  create(tenant: TenantRecord): Promise<boolean>;
  get(id: string): Promise<TenantRecord | undefined>;
  list(): Promise<TenantRecord[]>;
  /** False when there is no such tenant. */
  update(id: string, changes: { displayName?: string }): Promise<boolean>;
  /** Sets (or with null removes) the logo; false when there is no such tenant. */
  setLogo(id: string, logo: TenantLogo | null): Promise<boolean>;
  getLogo(id: string): Promise<TenantLogo | undefined>;
}
