// Command fake-openai serves the in-memory fake OpenAI Admin API (package
// fakeopenai) for manual runs, scripts and benchmarks against a real Vault.
//
//	fake-openai [-addr 127.0.0.1:0] [-addr-file PATH] [-latency 0] [-reporting-lag 0] [-v]
//	fake-openai accounts -url http://127.0.0.1:PORT/v1
//	fake-openai keys -url http://127.0.0.1:PORT/v1
//	fake-openai usage -url http://127.0.0.1:PORT/v1
//
// The admin key comes from FAKE_OPENAI_ADMIN_KEY (else a random one is made);
// only its id is ever printed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vault-plugin-openai/vault-plugin-openai/fakeopenai"
)

func main() {
	subcommands := map[string]func([]string, io.Writer) error{"accounts": accountsCmd, "keys": keysCmd, "usage": usageCmd}
	if len(os.Args) > 1 && subcommands[os.Args[1]] != nil {
		cmd := subcommands[os.Args[1]]
		if err := cmd(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "fake-openai %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "fake-openai:", err)
		stop()
		os.Exit(1)
	}
}

// serve runs the fake until ctx ends (SIGINT/SIGTERM in main), then shuts
// down gracefully.
func serve(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("fake-openai", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	addrFile := fs.String("addr-file", "", "write the base URL (http://HOST:PORT/v1) to this file once listening")
	latency := fs.Duration("latency", 0, "latency added to every API request")
	lag := fs.Duration("reporting-lag", 0, "how long usage stays out of the usage and cost reports (OpenAI's reporting delay)")
	verbose := fs.Bool("v", false, "log every request (never key values)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := log.New(stderr, "fake-openai: ", log.LstdFlags)
	opts := fakeopenai.Options{
		AdminKey: os.Getenv("FAKE_OPENAI_ADMIN_KEY"),
		// A contract violation is a client (or fake) bug: always say so,
		// -v or not. GET /_fake/violations lists them too.
		OnViolation:  func(v string) { logger.Printf("CONTRACT VIOLATION: %s", v) },
		ReportingLag: *lag,
	}
	if *verbose {
		opts.Logger = logger
	}
	fake := fakeopenai.New(opts)
	if *latency > 0 {
		fake.SetFaults(fakeopenai.Faults{Latency: *latency})
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String() + "/v1"
	if *addrFile != "" {
		// Write then rename so a watcher never reads a half-written file.
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(base+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			return err
		}
	}
	logger.Printf("serving %s (admin key id %s; projects %s, %s)", base, fake.AdminKeyID(), fakeopenai.ProjectActive, fakeopenai.ProjectArchived)

	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Printf("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// accountsCmd prints the fake's live service accounts as a table.
func accountsCmd(args []string, out io.Writer) error {
	var accts []fakeopenai.Account
	asJSON, err := fetchControl("accounts", args, &accts)
	if err != nil {
		return err
	}
	return printList(out, accts, asJSON, "PROJECT\tSERVICE ACCOUNT\tNAME\tCREATED\tKEY ID\tKEY EXPIRES", "live account(s)",
		func(w io.Writer, a fakeopenai.Account) {
			exp := "never"
			if a.KeyExpiresAt != 0 {
				exp = time.Unix(a.KeyExpiresAt, 0).UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ProjectID, a.ID, a.Name,
				time.Unix(a.CreatedAt, 0).UTC().Format(time.RFC3339), a.KeyID, exp)
		})
}

// keysCmd prints the fake's live service-account keys (never their values).
func keysCmd(args []string, out io.Writer) error {
	var keys []fakeopenai.KeyInfo
	asJSON, err := fetchControl("keys", args, &keys)
	if err != nil {
		return err
	}
	return printList(out, keys, asJSON, "PROJECT\tSERVICE ACCOUNT\tKEY ID\tNAME\tSCOPES\tEXPIRES", "live key(s)",
		func(w io.Writer, k fakeopenai.KeyInfo) {
			exp := "never"
			if k.ExpiresAt != 0 {
				exp = time.Unix(k.ExpiresAt, 0).UTC().Format(time.RFC3339)
				if k.Expired {
					exp += " (expired)"
				}
			}
			scopes := "all"
			if len(k.Scopes) > 0 {
				scopes = strings.Join(k.Scopes, ",")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", k.ProjectID, k.AccountID, k.ID, k.Name, scopes, exp)
		})
}

// usageCmd prints model usage per key as the fake counts it (reporting lag
// ignored).
func usageCmd(args []string, out io.Writer) error {
	var totals []fakeopenai.UsageTotal
	asJSON, err := fetchControl("usage", args, &totals)
	if err != nil {
		return err
	}
	return printList(out, totals, asJSON, "PROJECT\tKEY ID\tREQUESTS\tINPUT\tCACHED\tOUTPUT\tCOST (USD)", "key(s) with usage",
		func(w io.Writer, u fakeopenai.UsageTotal) {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%.6f\n", u.ProjectID, u.APIKeyID, u.Requests, u.InputTokens, u.CachedInputTokens, u.OutputTokens, u.CostUSD)
		})
}

// fetchControl parses a subcommand's flags (-url, -json) and decodes GET
// /_fake/<what> into v; it reports whether -json was given.
func fetchControl(what string, args []string, v any) (asJSON bool, err error) {
	fs := flag.NewFlagSet(what, flag.ContinueOnError)
	url := fs.String("url", "", "the fake's base URL, as written to -addr-file (http://HOST:PORT/v1)")
	jsonFlag := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return false, err
	}
	if *url == "" {
		return false, errors.New("-url is required")
	}
	root := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(*url), "/"), "/v1")
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(root + "/_fake/" + what)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("GET /_fake/%s: %s", what, resp.Status)
	}
	return *jsonFlag, json.Unmarshal(body, v)
}
