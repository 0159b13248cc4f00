# One node of a Vault HA cluster on integrated (Raft) storage, as scripts/cluster.sh
# runs it (make cluster): every node on loopback, one config per node rendered from
# this file into the script's state directory. The script fills in each double-braced field
# and repeats the retry_join block once per node of the cluster (a node's own
# address among them is harmless: a node stops joining once it is initialised or
# has joined, and every node has the same list).
#
# For a production cluster keep the shape and change what the demo leaves out:
# TLS on the listener (tls_cert_file/tls_key_file, https:// in api_addr and in
# leader_api_addr, with leader_ca_cert_file), mlock (disable_mlock = false, or keep
# it off only with swap disabled), real host names, and a seal other than one
# Shamir key share (auto-unseal or more shares).

ui            = false
disable_mlock = true

# Each node runs its own copy of the plugin binary from here; the catalog entry
# (name, version, SHA-256) is cluster-wide and replicated through Raft, so the
# same binary must be in this directory on every node before it is registered.
plugin_directory = "{{PLUGIN_DIR}}"

# The address clients and other nodes use to reach this node's API (standbys
# forward requests to the active node, and redirect to this address), and the
# address of its cluster port (Raft and request forwarding; always TLS, with
# certificates Vault manages itself, even when the listener has TLS off).
api_addr     = "http://127.0.0.1:{{API_PORT}}"
cluster_addr = "https://127.0.0.1:{{CLUSTER_PORT}}"

storage "raft" {
  path    = "{{DATA_DIR}}"
  node_id = "node{{NODE}}"

  # 1 is the tightest Raft timing (5 is Vault's default, tuned for slow links):
  # on loopback it cuts leader election after a failure to a few seconds.
  performance_multiplier = 1

  retry_join {
    leader_api_addr = "http://127.0.0.1:{{PEER_API_PORT}}"
  }
}

listener "tcp" {
  address         = "127.0.0.1:{{API_PORT}}"
  cluster_address = "127.0.0.1:{{CLUSTER_PORT}}"
  tls_disable     = true
}
