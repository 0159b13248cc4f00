# Vault Agent, file mode: log in with AppRole, keep the token in a file sink,
# and render the app's OpenAI key into ./openai.env, renewing its lease and
# fetching a new key when the lease reaches the role's max_ttl.
#
# Run from this directory: vault agent -config=agent-file.hcl
# Vault's address comes from VAULT_ADDR; the template reads OPENAI_BASE_URL
# from the agent's environment.

pid_file = "./agent.pid"

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path   = "./role-id"
      secret_id_file_path = "./secret-id"
      # The agent deletes the secret_id file after its first login unless
      # told otherwise; keep it so a restarted agent can log in again.
      remove_secret_id_file_after_reading = false
    }
  }

  # The agent's token, for `vault token revoke -self` when the app is retired:
  # revoking it revokes every lease the agent obtained.
  sink "file" {
    config = {
      path = "./vault-token"
      mode = 0600
    }
  }
}

template_config {
  # Stop (non-zero exit) rather than keep a stale key when Vault refuses for good.
  exit_on_retry_failure = true
}

template {
  source      = "./openai.env.ctmpl"
  destination = "./openai.env"
  perms       = "0600"
}
