# An auditor's policy: read how the mount is set up, change nothing, issue nothing.
#
# config answers without the admin key (it is write-only). keys/ is the
# engine's ledger of issued keys: list, read an entry by key id, and
# `vault read openai/keys/lookup redacted_value=...` (a key as OpenAI shows it
# redacted). Looking a key up by its full value is a write (the value goes in
# the body, never a URL): add `update` on "openai/keys/lookup" for auditors who
# investigate leaked keys. On an engine build without the ledger Vault answers
# 404 on keys/, not 403.
path "openai/config" {
  capabilities = ["read"]
}

path "openai/roles/*" {
  capabilities = ["read", "list"]
}

path "openai/keys/*" {
  capabilities = ["read", "list"]
}
