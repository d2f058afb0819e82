# The Vault policy Landlord's token needs (SECRETS_BACKEND=vault), path by path.
# Mount paths assume VAULT_DB_MOUNT=database and VAULT_TRANSIT_MOUNT=transit;
# `tenant_` stands for TENANT_DB_PREFIX. scripts/vault-dev-setup rewrites the mounts.

# The tenant cluster's connection, written at every start (idempotent).
path "database/config/tenant_cluster" {
  capabilities = ["create", "update", "read"]
}

# One role per tenant: created at provisioning, deleted at wipe.
path "database/roles/tenant_*" {
  capabilities = ["create", "update", "read", "delete"]
}

# Dynamic credentials: POST /tenants/:id/credentials.
path "database/creds/tenant_*" {
  capabilities = ["read"]
}

# Revoking one lease (rotation with a cutoff, a lost idempotency race).
path "sys/leases/revoke" {
  capabilities = ["update"]
}

# Revoking every lease of a tenant: suspend, hibernate, decommission, wipe.
path "sys/leases/revoke-prefix/database/creds/tenant_*" {
  capabilities = ["update", "sudo"]
}

# One transit key per tenant: wraps its data key; deleted at wipe (crypto-shredding).
path "transit/keys/tenant_*" {
  capabilities = ["create", "update", "read", "delete"]
}
path "transit/encrypt/tenant_*" {
  capabilities = ["update"]
}
path "transit/decrypt/tenant_*" {
  capabilities = ["update"]
}

# The start-up check of the token's own capabilities, and its renewal.
path "sys/capabilities-self" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
