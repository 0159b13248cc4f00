# An auditor's policy: read how the mount is set up, change nothing, issue nothing.
#
# config answers without the admin key (it is write-only). keys/ is the
# engine's ledger of issued keys where the engine has one; on a build without
# it Vault answers 404 there, not 403.
path "openai/config" {
  capabilities = ["read"]
}

path "openai/roles/*" {
  capabilities = ["read", "list"]
}

path "openai/keys/*" {
  capabilities = ["read", "list"]
}
