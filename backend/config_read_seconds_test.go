package backend

import (
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// Issue 11 item 8: every duration config read returns is integer seconds
// (the SDK's rotation helper emits floats). The CLI's table output still
// humanizes keys ending in _ttl or _period ("0s"); -format=json shows the
// integers.
func TestConfig_ReadDurationsAreIntegerSeconds(t *testing.T) {
	e := newTestEnv(t)
	e.withSystem(&ceSystemView{StaticSystemView: *e.staticSystem()})
	e.mustOK(logical.UpdateOperation, "config", map[string]interface{}{
		"admin_api_key": e.fake.AdminKey(), "base_url": e.url, "rotation_period": "1h",
	})
	read := e.mustOK(logical.ReadOperation, "config", nil)
	for _, k := range []string{"request_timeout", "admin_api_key_ttl", "rotation_period", "rotation_window", "tidy_interval", "retry_budget"} {
		if _, ok := read.Data[k].(int64); !ok {
			t.Errorf("%s = %#v, want int64 seconds", k, read.Data[k])
		}
	}
	if read.Data["rotation_period"] != int64(3600) {
		t.Errorf("rotation_period = %#v", read.Data["rotation_period"])
	}
}
