# Vault Agent, process-supervisor (exec) mode: log in with AppRole, start the
# app with OPENAI_API_KEY and OPENAI_BASE_URL in its environment, renew the
# key's lease, and when the lease reaches the role's max_ttl fetch a new key
# and restart the app with it (SIGTERM, then a new process).
#
# Run from this directory: vault agent -config=agent-exec.hcl
# Vault 1.21 refuses `template` blocks next to `env_template`, so the file
# mode is its own config (agent-file.hcl).

pid_file = "./agent.pid"

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path                   = "./role-id"
      secret_id_file_path                 = "./secret-id"
      remove_secret_id_file_after_reading = false
    }
  }

  sink "file" {
    config = {
      path = "./vault-token"
      mode = 0600
    }
  }
}

template_config {
  exit_on_retry_failure = true
}

# All three read the same secret: the agent reads it once (one key, one lease).
env_template "OPENAI_API_KEY" {
  contents             = "{{ with secret \"openai/creds/app\" }}{{ .Data.api_key }}{{ end }}"
  error_on_missing_key = true
}

env_template "OPENAI_LEASE_ID" {
  contents             = "{{ with secret \"openai/creds/app\" }}{{ .LeaseID }}{{ end }}"
  error_on_missing_key = true
}

env_template "OPENAI_BASE_URL" {
  contents = "{{ env \"OPENAI_BASE_URL\" }}"
}

exec {
  command                   = ["./app.sh"]
  restart_on_secret_changes = "always"
  restart_stop_signal       = "SIGTERM"
}
