//go:build tools

// Package tools pins the Vault server version the e2e suite and the demo run.
package tools

import _ "github.com/hashicorp/vault"
