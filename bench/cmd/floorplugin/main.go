// Command floorplugin is the benchmark's floor for an issue through an
// external plugin: a secrets engine built on the same SDK and served the same
// way as the OpenAI engine (multiplexed gRPC, Vault's AutoMTLS), whose paths
// do nothing of their own. It answers what any engine built this way pays
// before doing its own work, so the benchmark can show how much of an
// issue's cost is Vault's external-plugin round trip, the lease and the two
// storage writes crash safety needs, and how much is the engine's:
//
//   - hop: a read answered from memory (Vault's request, the gRPC round trip
//     to the plugin and back; no storage, no lease);
//   - lease: the same answer as a secret on a one-hour lease (adds Vault's
//     lease registration);
//   - lease-writes: two storage writes one after the other, then the lease:
//     the shape of a crash-safe issue (an entry written before the external
//     call, a record after it) with no external call and nothing else;
//   - lease-writes-call: the same with one HTTP POST between the writes (to
//     FLOOR_UPSTREAM_URL with FLOOR_UPSTREAM_AUTHORIZATION, set by the
//     benchmark at registration: the fake's create-account endpoint), plain
//     net/http on keep-alive connections: the least an issue can be.
//
// Revoking or renewing its leases does nothing. It is built and registered
// only by the benchmark (bench/floor_test.go), never shipped.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/plugin"
)

const secretType = "floor"

// leaseTTL outlives any benchmark run; the benchmark's Vault is discarded.
const leaseTTL = time.Hour

func main() {
	meta := &api.PluginAPIClientMeta{}
	if err := meta.FlagSet().Parse(os.Args[1:]); err != nil {
		fatal(err)
	}
	if err := plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	}); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	hclog.New(&hclog.LoggerOptions{Name: "floorplugin"}).Error("plugin shutting down", "error", err)
	os.Exit(1)
}

func factory(ctx context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	var b *framework.Backend
	read := func(h framework.OperationFunc) map[logical.Operation]framework.OperationHandler {
		return map[logical.Operation]framework.OperationHandler{logical.ReadOperation: &framework.PathOperation{Callback: h}}
	}
	lease := func() *logical.Response {
		resp := b.Secret(secretType).Response(map[string]interface{}{"value": "floor"}, nil)
		resp.Secret.TTL = leaseTTL
		return resp
	}
	// leaseAfterWrites answers a lease once writesAround(call) succeeded.
	leaseAfterWrites := func(call func(context.Context, string) error) framework.OperationFunc {
		return func(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
			if err := writesAround(ctx, req.Storage, call); err != nil {
				return nil, err
			}
			return lease(), nil
		}
	}
	b = &framework.Backend{
		Help:        "The benchmark's external-plugin floor: paths that do nothing of their own.",
		BackendType: logical.TypeLogical,
		Paths: []*framework.Path{
			{
				Pattern:         "hop",
				HelpSynopsis:    "Answer from memory: the external plugin's round trip alone.",
				HelpDescription: "A read answered without storage or lease.",
				Operations: read(func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
					return &logical.Response{Data: map[string]interface{}{"value": "floor"}}, nil
				}),
			},
			{
				Pattern:         "lease",
				HelpSynopsis:    "Answer a secret on a lease: the round trip and Vault's lease registration.",
				HelpDescription: "A read answered as a one-hour lease, without storage.",
				Operations: read(func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
					return lease(), nil
				}),
			},
			{
				Pattern:         "lease-writes-call",
				HelpSynopsis:    "Two storage writes around one upstream HTTP call, then a lease: the least an issue can be.",
				HelpDescription: "Writes guard/<id>, POSTs to FLOOR_UPSTREAM_URL, writes record/<id>, and answers a one-hour lease.",
				Operations:      read(leaseAfterWrites(upstreamCall)),
			},
			{
				Pattern:         "lease-writes",
				HelpSynopsis:    "Two storage writes, then a lease: a crash-safe issue with no external call.",
				HelpDescription: "Writes guard/<id>, then record/<id>, one after the other, and answers a one-hour lease.",
				Operations:      read(leaseAfterWrites(nil)),
			},
		},
		Secrets: []*framework.Secret{{
			Type:   secretType,
			Fields: map[string]*framework.FieldSchema{"value": {Type: framework.TypeString, Description: "A constant."}},
			Revoke: func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
				return nil, nil
			},
			Renew: func(_ context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
				return &logical.Response{Secret: req.Secret}, nil
			},
		}},
	}
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// writesAround writes an entry, runs call (if any), then writes a record:
// the two writes of a crash-safe issue around its external call.
func writesAround(ctx context.Context, s logical.Storage, call func(context.Context, string) error) error {
	id := randomID()
	entry := []byte(`{"name":"floor-` + id + `","created_at":` + strconv.FormatInt(time.Now().Unix(), 10) + `}`)
	if err := s.Put(ctx, &logical.StorageEntry{Key: "guard/" + id, Value: entry}); err != nil {
		return err
	}
	if call != nil {
		if err := call(ctx, id); err != nil {
			return err
		}
	}
	return s.Put(ctx, &logical.StorageEntry{Key: "record/" + id, Value: entry})
}

// upstream is one keep-alive client for every upstream call, as the engine
// keeps one.
var upstream = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: time.Minute}

// upstreamCall POSTs one create to FLOOR_UPSTREAM_URL and reads the answer.
func upstreamCall(ctx context.Context, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, os.Getenv("FLOOR_UPSTREAM_URL"), strings.NewReader(`{"name":"floor-`+id+`"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", os.Getenv("FLOOR_UPSTREAM_AUTHORIZATION"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := upstream.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("upstream answered HTTP %d", resp.StatusCode)
	}
	if !bytes.Contains(body, []byte(`"api_key"`)) {
		return errors.New("upstream answer lacks api_key")
	}
	return nil
}

// randomID names one request's entries, as an issue's unique token does.
func randomID() string {
	var buf [9]byte
	_, _ = rand.Read(buf[:])
	return hex.EncodeToString(buf[:])
}
