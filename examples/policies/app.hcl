# An application's policy: issue keys from one role, nothing else.
#
# read   vault read openai/creds/app (GET; a ttl can ride along as a query parameter)
# update vault write openai/creds/app ttl=... (PUT/POST, what some clients send)
# Renewing and ending its own leases needs no more: Vault's default policy has
# sys/leases/renew and auth/token/revoke-self (revoking the app's token revokes
# every lease it created). Everything else on the mount is a 403.
path "openai/creds/app" {
  capabilities = ["read", "update"]
}
