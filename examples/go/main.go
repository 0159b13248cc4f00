// Command go is an example application that gets its OpenAI key from Vault:
// it logs in with AppRole (github.com/hashicorp/vault/api), reads
// openai/creds/<role>, calls the OpenAI API with the issued key
// (github.com/openai/openai-go/v3, base URL from OPENAI_BASE_URL), keeps the
// lease renewed with vault/api's LifetimeWatcher, and reads a new key when
// renewal ends (the lease reached the role's max_ttl). On exit it revokes its
// own Vault token, which revokes its leases and so deletes its keys' service
// accounts at OpenAI.
//
// Environment: VAULT_ADDR, APPROLE_ROLE_ID, APPROLE_SECRET_ID, OPENAI_BASE_URL
// (default https://api.openai.com/v1). Flags: -mount, -role, -every (time
// between API calls), -keys (stop once the key read as the Nth has answered
// its first call: -keys=2 shows one renewal cycle and the re-read; 0 runs
// until SIGINT/SIGTERM).
//
//	go run ./examples/go -role=app -keys=2
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

func main() {
	mount := flag.String("mount", "openai", "path the engine is mounted at")
	role := flag.String("role", "app", "the engine's role to read keys from")
	every := flag.Duration("every", 2*time.Second, "time between API calls")
	keys := flag.Int("keys", 0, "stop once the Nth key read has answered its first call (0: run until interrupted)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *mount, *role, *every, *keys); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, mount, role string, every time.Duration, keys int) error {
	client, err := vault.NewClient(vault.DefaultConfig()) // VAULT_ADDR
	if err != nil {
		return err
	}
	// Log in with AppRole (auth/approle/login); the token it returns is the
	// app's, so a VAULT_TOKEN in the environment is not used.
	client.ClearToken()
	login, err := client.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{
		"role_id":   os.Getenv("APPROLE_ROLE_ID"),
		"secret_id": os.Getenv("APPROLE_SECRET_ID"),
	})
	if err != nil {
		return fmt.Errorf("approle login: %w", err)
	}
	if login == nil || login.Auth == nil {
		return errors.New("approle login returned no token")
	}
	client.SetToken(login.Auth.ClientToken)
	log.Printf("logged in with AppRole (token ttl %ds, policies %v)", login.Auth.LeaseDuration, login.Auth.Policies)
	// Revoking the token revokes every lease read with it: the keys die at
	// OpenAI now rather than at their TTL.
	defer func() {
		if err := client.Auth().Token().RevokeSelfWithContext(context.Background(), ""); err != nil {
			log.Printf("revoking the Vault token: %v", err)
			return
		}
		log.Printf("revoked the Vault token and with it its leases")
	}()

	baseURL := os.Getenv("OPENAI_BASE_URL")
	if baseURL == "" {
		baseURL = "https://api.openai.com/v1"
	}
	path := mount + "/creds/" + role
	for n := 1; keys == 0 || n <= keys; n++ {
		secret, err := client.Logical().ReadWithContext(ctx, path)
		if err != nil {
			return fmt.Errorf("reading %s: %w", path, err)
		}
		key, _ := secret.Data["api_key"].(string)
		if key == "" {
			return fmt.Errorf("%s returned no api_key", path)
		}
		log.Printf("key %d: lease %s (%ds, renewable %t), service account %v",
			n, secret.LeaseID, secret.LeaseDuration, secret.Renewable, secret.Data["service_account_id"])
		ai := openai.NewClient(option.WithAPIKey(key), option.WithBaseURL(baseURL))
		if n == keys {
			return callModels(ctx, &ai, n) // the last key asked for: one call, then exit
		}
		if err := useKey(ctx, client, secret, &ai, n, every); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// useKey calls the API with the key every interval while a LifetimeWatcher
// renews its lease; it returns when renewal ends (time for a new key) or ctx
// is done.
func useKey(ctx context.Context, client *vault.Client, secret *vault.Secret, ai *openai.Client, n int, every time.Duration) error {
	watcher, err := client.NewLifetimeWatcher(&vault.LifetimeWatcherInput{Secret: secret})
	if err != nil {
		return err
	}
	go watcher.Start()
	defer watcher.Stop()

	tick := time.NewTicker(every)
	defer tick.Stop()
	call := func() error { return callModels(ctx, ai, n) }
	if err := call(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-watcher.DoneCh():
			// Renewal ended: the lease reached max_ttl (or renewing failed).
			// Vault expires the lease on its own and the key with it.
			if err != nil {
				log.Printf("key %d: renewal ended: %v; reading a new key", n, err)
			} else {
				log.Printf("key %d: renewal ended (lease at max_ttl); reading a new key", n)
			}
			return nil
		case r := <-watcher.RenewCh():
			log.Printf("key %d: renewed lease %s for %ds", n, r.Secret.LeaseID, r.Secret.LeaseDuration)
		case <-tick.C:
			if err := call(); err != nil {
				return err
			}
		}
	}
}

// callModels lists the models with the key: GET /v1/models.
func callModels(ctx context.Context, ai *openai.Client, n int) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	page, err := ai.Models.List(cctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		var apiErr *openai.Error
		if errors.As(err, &apiErr) {
			return fmt.Errorf("key %d: GET /v1/models: HTTP %d", n, apiErr.StatusCode)
		}
		return fmt.Errorf("key %d: GET /v1/models: %w", n, err)
	}
	log.Printf("key %d: GET /v1/models -> 200, %d models", n, len(page.Data))
	return nil
}
