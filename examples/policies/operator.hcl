# An operator's policy: run the mount (config, roles, admin key rotation, the
# orphan sweep) and end its leases, but never issue a key.
#
# No path under openai/creds/ is granted, so an operator cannot read a key.
# The admin key is write-only: openai/config never returns it to anyone.
path "openai/config" {
  capabilities = ["create", "read", "update", "delete"]
}

path "openai/config/rotate-root" {
  capabilities = ["update"]
}

path "openai/roles/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

path "openai/tidy" {
  capabilities = ["update"]
}

# Ending keys early: vault lease revoke -prefix openai/creds/<role> (Vault wants
# sudo for prefix revocation) and listing what is live.
path "sys/leases/revoke-prefix/openai/creds/*" {
  capabilities = ["update", "sudo"]
}

path "sys/leases/lookup/openai/creds/*" {
  capabilities = ["list", "sudo"]
}
