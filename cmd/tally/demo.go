package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2/dhis2test"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/examples"
	"github.com/tally-hmis/tally/mediator"
	"github.com/tally-hmis/tally/mediator/txlog"
)

const (
	demoAdminToken = "demo-admin-token-0123456789"
	demoCHTToken   = "demo-cht-token-0123456789"
)

func demoCmd() *command {
	c := &command{
		name: "demo", usage: "demo [--addr HOST:PORT] [--dhis2-version 2.40] [--keep DIR]",
		summary: "Run Tally with embedded NATS and a bundled DHIS2 emulator, post the sample payloads, and keep serving.",
		example: "tally demo --addr 127.0.0.1:8080",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		addr := fs.String("addr", "127.0.0.1:8080", "where Tally listens")
		version := fs.String("dhis2-version", "2.40", "DHIS2 version the emulator behaves as (2.36 to 2.43)")
		keep := fs.String("keep", "", "store JetStream data in this directory and keep it (default: a temporary directory)")
		once := fs.Bool("once", false, "exit after the sample payloads are delivered (for scripts and CI)")
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		return runDemo(ctx, env, *addr, *version, *keep, *once)
	}
	return c
}

func runDemo(ctx context.Context, env *cliEnv, addr, version, keep string, once bool) error {
	out := env.stdout
	store := keep
	if store == "" {
		dir, err := os.MkdirTemp("", "tally-demo-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		store = dir
	}

	if _, err := dhis2test.ParseVersion(version); err != nil {
		return fmt.Errorf("--dhis2-version: %w", err)
	}
	emu := dhis2test.NewServer(dhis2test.WithVersion(version))
	defer emu.Close()

	// The demo runs the example configuration itself: examples/tally.yaml with its
	// mapping tables, written next to the store, with the emulator as the target.
	cfg, err := demoConfig(env, store, addr, emu.URL)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s (choose another with --addr): %w", addr, err)
	}
	log := slog.New(slog.NewTextHandler(env.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := mediator.New(cfg, mediator.Options{Logger: log, Version: versionString(), Listener: ln})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(sctx)
	}()
	base := "http://" + svc.Addr()
	fmt.Fprintf(out, "Tally %s is running at %s (embedded NATS in %s)\n", versionString(), base, store)
	fmt.Fprintf(out, "DHIS2 emulator (behaving as %s) at %s, user %s / %s\n", emu.Version(), emu.URL,
		dhis2test.SampleUser, dhis2test.SamplePassword)
	fmt.Fprintf(out, "Console at %s/console/ (log in with the admin token %s)\n\n", base, demoAdminToken)

	entries, err := fs.ReadDir(examples.Files, "payloads")
	if err != nil {
		return err
	}
	var txs []string
	for _, e := range entries {
		name := e.Name()
		data, err := fs.ReadFile(examples.Files, path.Join("payloads", name))
		if err != nil {
			return err
		}
		src := demoSourceFor(name)
		id, n, err := demoPost(ctx, base, src, name, data)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "posted %-22s to %-19s %3d values -> transaction %s\n", name, src.path, n, id)
		txs = append(txs, id)
	}
	fmt.Fprintln(out)
	for _, id := range txs {
		status, err := demoWait(ctx, base, id)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "transaction %s: %s\n", id, status)
	}
	// A scheduled exchange, run once now: the emulator plays the tracker instance too, and
	// its analytics turn program indicators into HMIS values.
	if line, err := demoExchange(ctx, base, "tracker-pi-to-hmis"); err != nil {
		fmt.Fprintf(out, "exchange tracker-pi-to-hmis: %v\n", err)
	} else {
		fmt.Fprintln(out, line)
	}
	fmt.Fprintln(out)
	printEmulatorSummary(out, emu)

	fmt.Fprintf(out, `
Try next:
  curl -s %[1]s/metrics | grep ^tally_
  curl -s -H 'Authorization: Bearer %[2]s' %[1]s/admin/v1/transactions
  curl -s -H 'Authorization: Bearer %[3]s' -H 'Content-Type: application/json' \
       --data-binary @examples/payloads/chw-2024-01.json %[1]s/ingest/cht
  curl -s -u exchange:exchange-password -H 'Content-Type: application/csv' \
       --data-binary @examples/payloads/mal-2024-01.csv '%[1]s/api/dataValueSets?idScheme=CODE'
  curl -s -u %[4]s:%[5]s '%[6]s/api/dataValueSets.json?dataSet=CHW_MONTHLY&period=202401&orgUnit=KL&children=true&idScheme=CODE&inputIdScheme=CODE'
  curl -s -u %[4]s:%[5]s '%[6]s/api/analytics/dataValueSet.json?dimension=dx:PI_BCG_F_LT1&dimension=pe:2024Q2&dimension=ou:KL_N_F1&inputIdScheme=CODE&outputIdScheme=CODE'
  TALLY_URL=%[1]s TALLY_ADMIN_TOKEN=%[2]s go run ./cmd/tally send --dry-run --source tracker examples/payloads/tracker-2024-02.json
  TALLY_URL=%[1]s TALLY_ADMIN_TOKEN=%[2]s go run ./cmd/tally tx list

`, base, demoAdminToken, demoCHTToken, dhis2test.SampleUser, dhis2test.SamplePassword, emu.URL)
	if once {
		return nil
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}

// demoSource is where a sample payload goes and how it authenticates.
type demoSource struct {
	path, user, secret string
}

// demoSourceFor routes each sample payload as its producer would send it: the CHT export to
// the cht source, the tracker's analytics output through the tracker mapping, ADX through
// ADX category resolution, and the HMIS-coded DVS and CSV files as a script posting to
// DHIS2's own endpoint would.
func demoSourceFor(name string) demoSource {
	switch {
	case strings.HasPrefix(name, "chw-"):
		return demoSource{path: "/ingest/cht", secret: demoEnv["CHT_TOKEN"]}
	case strings.HasPrefix(name, "tracker-"):
		return demoSource{path: "/ingest/tracker", secret: demoEnv["TRACKER_TOKEN"]}
	case strings.HasSuffix(name, ".adx.xml"):
		return demoSource{path: "/ingest/adx", secret: demoEnv["ADX_TOKEN"]}
	default:
		// As to DHIS2, the request says its ids are codes: to /api/dataValueSets a missing
		// id scheme means UID, whatever the source's id_schemes.
		return demoSource{path: "/api/dataValueSets?idScheme=CODE", user: "exchange", secret: demoEnv["EXCHANGE_PASSWORD"]}
	}
}

// demoEnv supplies the example configuration's ${VAR}s.
var demoEnv = map[string]string{
	"TALLY_ADMIN_TOKEN": demoAdminToken,
	"CHT_TOKEN":         demoCHTToken,
	"TRACKER_TOKEN":     "demo-tracker-token-0123456789",
	"ADX_TOKEN":         "demo-adx-token-0123456789",
	"EXCHANGE_PASSWORD": "exchange-password",
	"HMIS_PASSWORD":     dhis2test.SamplePassword,
}

// demoConfig writes the embedded example configuration and tables into dir and loads it
// with the emulator as the target, the store in dir and the listener on addr.
func demoConfig(env *cliEnv, dir, addr, emuURL string) (*config.Config, error) {
	err := fs.WalkDir(examples.Files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, "payloads/") {
			return err
		}
		data, err := fs.ReadFile(examples.Files, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, "config", filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		return nil, fmt.Errorf("writing the example configuration: %w", err)
	}
	file := filepath.Join(dir, "config", "tally.yaml")
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	getenv := func(k string) string {
		if k == "HMIS_URL" || k == "TRACKER_URL" {
			return emuURL
		}
		if v, ok := demoEnv[k]; ok {
			return v
		}
		return env.getenv(k)
	}
	cfg, err := config.Parse(file, data, getenv)
	if err != nil {
		return nil, err
	}
	cfg.HTTP.Addr = addr
	cfg.NATS.StoreDir = filepath.Join(dir, "nats")
	cfg.Log.Level = "warn"
	return cfg, nil
}

func demoPost(ctx context.Context, base string, src demoSource, name string, data []byte) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", base+src.path, bytes.NewReader(data))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", contentTypeFor(name))
	if src.user != "" {
		req.SetBasicAuth(src.user, src.secret)
	} else {
		req.Header.Set("Authorization", "Bearer "+src.secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("posting %s: %w", name, err)
	}
	defer resp.Body.Close()
	var body struct {
		Transaction string `json:"transaction"`
		Values      int    `json:"values"`
		Message     string `json:"message"`
		Response    struct {
			Reference   string `json:"reference"`
			ImportCount struct {
				Imported int `json:"imported"`
			} `json:"importCount"`
		} `json:"response"`
	}
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &body)
	if resp.StatusCode >= 300 {
		return "", 0, fmt.Errorf("posting %s: HTTP %d: %s", name, resp.StatusCode, raw)
	}
	if body.Transaction == "" { // DHIS2's own answer shape
		return body.Response.Reference, body.Response.ImportCount.Imported, nil
	}
	return body.Transaction, body.Values, nil
}

// demoExchange runs an exchange through the admin API and waits for its delivery.
func demoExchange(ctx context.Context, base, name string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/admin/v1/exchanges/"+name+"/run?wait=true", nil)
	req.Header.Set("Authorization", "Bearer "+demoAdminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var run struct {
		Status      string `json:"status"`
		Error       string `json:"error"`
		Transaction string `json:"transaction"`
		Values      int    `json:"values"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &run); err != nil || resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, raw)
	}
	if run.Error != "" {
		return "", fmt.Errorf("%s: %s", run.Status, run.Error)
	}
	status, err := demoWait(ctx, base, run.Transaction)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("ran exchange %s: pulled %d program indicator values from analytics -> transaction %s: %s",
		name, run.Values, run.Transaction, status), nil
}

// demoWait polls the transaction until it leaves "accepted" or 30 seconds pass.
func demoWait(ctx context.Context, base, id string) (string, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/admin/v1/transactions/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+demoAdminToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		var v struct {
			Status string `json:"status"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if v.Status != "" && v.Status != txlog.TxAccepted {
			return v.Status, nil
		}
		if time.Now().After(deadline) {
			return v.Status + " (still waiting after 30s)", nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// printEmulatorSummary shows what the emulated HMIS now holds, per data element.
func printEmulatorSummary(w io.Writer, emu *dhis2test.Server) {
	meta := emu.Metadata()
	type row struct {
		code        string
		values, sum int
	}
	rows := map[string]*row{}
	for _, v := range emu.Store().Values() {
		code := v.Key.DataElement
		if de := meta.DataElement(code); de != nil && de.Code != "" {
			code = de.Code
		}
		r := rows[code]
		if r == nil {
			r = &row{code: code}
			rows[code] = r
		}
		r.values++
		var n int
		if _, err := fmt.Sscan(v.Value, &n); err == nil {
			r.sum += n
		}
	}
	names := make([]string, 0, len(rows))
	for n := range rows {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "The emulated HMIS now holds %d values:\n", emu.Store().Len())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  DATA ELEMENT\tVALUES\tTOTAL")
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%d\t%d\n", n, rows[n].values, rows[n].sum)
	}
	_ = tw.Flush()

}
