package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/mediator/exchange"
)

func exchangeCmd() *command {
	c := &command{
		name: "exchange",
		usage: "exchange list | exchange show NAME | exchange run NAME [--dry-run] [--no-wait] | exchange runs NAME | " +
			"exchange import --from URL [--username U] [--id UID...] [--file FILE]   (read commands take -o table|json|yaml)",
		summary: "List, show and run scheduled exchanges (DHIS2 analytics or CHT export pulls); import DHIS2's aggregate data exchanges as Tally configuration.",
		example: `tally exchange list
tally exchange run epi-monthly --dry-run
tally exchange run epi-monthly
tally exchange runs epi-monthly
DHIS2_PASSWORD=district tally exchange import --from https://tracker.example.org --username admin --file exchanges.yaml`,
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		api := addAPIFlags(fs, env)
		dry := fs.Bool("dry-run", false, "run: pull, map and compare, and show what would be sent; nothing is stored or sent")
		noWait := fs.Bool("no-wait", false, "run: start the run and print its transaction id without waiting for it")
		limit := fs.Int("limit", 20, "runs: at most this many")
		from := fs.String("from", "", "import: the DHIS2 instance's base URL")
		user := fs.String("username", "", "import: Basic user (password from $DHIS2_PASSWORD); without it, a token from $DHIS2_TOKEN")
		var ids multiFlag
		fs.Var(&ids, "id", "import: only this exchange (uid); repeatable")
		file := fs.String("file", "", "import: write to this file instead of standard output")
		out := addOutputFlag(fs)
		args, err := parseInterspersed(c, env, fs, args)
		if err != nil {
			return err
		}
		if err := out.check(); err != nil {
			return err
		}
		if len(args) == 0 {
			fs.Usage()
			return errUsage
		}
		sub, rest := args[0], args[1:]
		switch {
		case sub == "list" && len(rest) == 0:
			var raw json.RawMessage
			if _, err := api.do(ctx, "GET", "/admin/v1/exchanges", "", nil, &raw); err != nil {
				return err
			}
			if done, err := out.print(env.stdout, raw); done || err != nil {
				return err
			}
			return printExchangeList(env.stdout, raw)
		case sub == "show" && len(rest) == 1:
			var raw json.RawMessage
			if _, err := api.do(ctx, "GET", "/admin/v1/exchanges/"+url.PathEscape(rest[0]), "", nil, &raw); err != nil {
				return err
			}
			if out.format == "yaml" {
				return printYAML(env.stdout, raw)
			}
			printJSON(env.stdout, raw) // an exchange is a document, not a row: JSON is its table
			return nil
		case sub == "runs" && len(rest) == 1:
			var raw json.RawMessage
			path := fmt.Sprintf("/admin/v1/exchanges/%s/runs?limit=%d", url.PathEscape(rest[0]), *limit)
			if _, err := api.do(ctx, "GET", path, "", nil, &raw); err != nil {
				return err
			}
			if done, err := out.print(env.stdout, raw); done || err != nil {
				return err
			}
			var list struct {
				Runs []*exchange.ExchangeRun `json:"runs"`
			}
			if err := json.Unmarshal(raw, &list); err != nil {
				return err
			}
			tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TRANSACTION\tTRIGGER\tSTARTED\tSTATUS\tVALUES\tREMOVED\tDELIVERY")
			for _, r := range list.Runs {
				removed := 0
				for _, t := range r.Targets {
					removed += t.Removed
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.Transaction, r.Trigger, r.Started.Local().Format(time.DateTime),
					r.Status, r.Values, removed, r.Delivery)
			}
			return tw.Flush()
		case sub == "run" && len(rest) == 1:
			return runExchangeCLI(ctx, env, api, rest[0], *dry, *noWait, out.format == "json")
		case sub == "import" && len(rest) == 0:
			return importExchanges(ctx, env, *from, *user, ids, *file)
		}
		fs.Usage()
		return errUsage
	}
	return c
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func printExchangeList(w io.Writer, raw []byte) error {
	var list struct {
		Exchanges []*exchange.ExchangeInfo `json:"exchanges"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSOURCE\tSCHEDULE\tNEXT\tLAST RUN\tSTATUS\tHEALTH")
	for _, e := range list.Exchanges {
		next, last, status, health := "-", "-", "-", "ok"
		if !e.Next.IsZero() {
			next = e.Next.Local().Format(time.DateTime)
		}
		if e.LastRun != nil {
			last, status = e.LastRun.Started.Local().Format(time.DateTime), e.LastRun.Status
		}
		if e.Running {
			status = "running"
		}
		if e.Health != nil && e.Health.Failing {
			health = fmt.Sprintf("failing since %s (%d runs)", e.Health.Since.Local().Format(time.DateTime), e.Health.Failures)
		}
		schedule := e.Schedule
		if schedule == "" {
			schedule = "on demand"
		}
		fmt.Fprintf(tw, "%s\t%s %s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Source.Type, e.Source.URL, schedule, next, last, status, health)
	}
	return tw.Flush()
}

func runExchangeCLI(ctx context.Context, env *cliEnv, api *apiClient, name string, dry, noWait, asJSON bool) error {
	base := "/admin/v1/exchanges/" + url.PathEscape(name)
	var raw json.RawMessage
	if dry {
		fmt.Fprintf(env.stderr, "running %s (dry run)...\n", name)
		if _, err := api.do(ctx, "POST", base+"/run?dryRun=true", "", nil, &raw); err != nil {
			return err
		}
	} else {
		var started struct {
			Transaction string `json:"transaction"`
			Href        string `json:"href"`
		}
		if _, err := api.do(ctx, "POST", base+"/run", "", nil, &raw); err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &started); err != nil {
			return err
		}
		if noWait {
			printJSON(env.stdout, raw)
			return nil
		}
		var err error
		if raw, err = awaitRun(ctx, env, api, base, started.Transaction, started.Href); err != nil {
			return err
		}
	}
	if asJSON {
		printJSON(env.stdout, raw)
		return nil
	}
	var run exchange.ExchangeRun
	if err := json.Unmarshal(raw, &run); err != nil {
		return err
	}
	printRun(env.stdout, &run)
	if dry {
		fmt.Fprintln(env.stdout, "\nDry run: nothing was stored or sent. Add --json to see the values.")
	}
	if run.Status == exchange.RunFailed {
		return errors.New("the run failed")
	}
	return nil
}

// awaitRun polls a run until it is finished, saying on stderr what it is doing, and
// returns its summary. Polling, rather than one long request, survives proxies' timeouts
// while analytics tables update for an hour.
func awaitRun(ctx context.Context, env *cliEnv, api *apiClient, base, tx, href string) (json.RawMessage, error) {
	fmt.Fprintf(env.stderr, "run started as transaction %s\n", tx)
	said := ""
	say := func(s string) {
		if s != said {
			fmt.Fprintf(env.stderr, "  %s\n", s)
			said = s
		}
	}
	for wait := 100 * time.Millisecond; ; wait = min(wait*2, 2*time.Second) {
		var got struct {
			Run         json.RawMessage `json:"run"`
			Transaction struct {
				Status string `json:"status"`
			} `json:"transaction"`
		}
		code, err := api.do(ctx, "GET", href, "", nil, &got)
		switch {
		case err == nil:
			var run exchange.ExchangeRun
			if err := json.Unmarshal(got.Run, &run); err != nil {
				return nil, err
			}
			if run.Status != exchange.RunRunning {
				return got.Run, nil
			}
			say(fmt.Sprintf("%d values stored; deliveries %s", run.Values, got.Transaction.Status))
		case code == 404:
			// Not recorded yet: analytics or pulling. The exchange says whether it still runs.
			var info exchange.ExchangeInfo
			if _, err := api.do(ctx, "GET", base, "", nil, &info); err != nil {
				return nil, err
			}
			if !info.Running {
				if info.LastRun != nil && info.LastRun.Transaction == tx {
					data, err := json.Marshal(info.LastRun)
					return data, err
				}
				if said != "" {
					return nil, fmt.Errorf("the run ended without a record; see Tally's log")
				}
			}
			say("updating analytics tables or pulling...")
		default:
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func printRun(w io.Writer, r *exchange.ExchangeRun) {
	fmt.Fprintf(w, "exchange %s: %s", r.Exchange, r.Status)
	if r.Transaction != "" {
		fmt.Fprintf(w, " (transaction %s)", r.Transaction)
	}
	fmt.Fprintf(w, ", %s\n", r.Finished.Sub(r.Started).Round(time.Millisecond))
	if a := r.Analytics; a != nil {
		fmt.Fprintf(w, "  analytics tables: job %s, %.1fs %s%s\n", a.Job, a.Seconds, a.Message, a.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  REQUEST\tPERIODS\tVALUES\tDUPLICATES\tERROR")
	for _, q := range r.Requests {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\n", q.Name, clip(strings.Join(q.Periods, ","), 60), q.Values, q.Duplicates, clip(q.Error, 80))
	}
	_ = tw.Flush()
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TARGET\tMAPPED\tUNMAPPED\tREMOVED\tCOMPLETE\tDELIVERY")
	for _, t := range r.Targets {
		delivery := t.Delivery
		if t.Error != "" {
			delivery = joinNonEmpty(delivery, "error: "+clip(t.Error, 80))
		}
		if t.StaleSkipped != "" {
			delivery = joinNonEmpty(delivery, "stale values "+t.StaleSkipped)
		}
		if len(t.Held) > 0 {
			delivery = joinNonEmpty(delivery, "removals held for "+strings.Join(t.Held, ","))
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\t%s\n", t.Target, t.Mapped, t.Unmapped, t.Removed, t.Registered, delivery)
	}
	_ = tw.Flush()
	for _, m := range r.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", m)
	}
	for _, m := range r.Notified {
		fmt.Fprintf(w, "  notified: %s\n", m)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", r.Error)
	}
}

func joinNonEmpty(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// importExchanges reads a DHIS2 instance's aggregate data exchanges and writes the
// equivalent Tally configuration. It talks to DHIS2 directly, not to Tally.
func importExchanges(ctx context.Context, env *cliEnv, from, user string, ids []string, out string) error {
	if from == "" {
		return fmt.Errorf("import needs --from URL: the DHIS2 instance to read the exchanges from")
	}
	cfg := dhis2.Config{BaseURL: from, UserAgent: "tally/" + version}
	if user != "" {
		cfg.Username, cfg.Password = user, env.getenv("DHIS2_PASSWORD")
		if cfg.Password == "" {
			return fmt.Errorf("set DHIS2_PASSWORD to the password of %s", user)
		}
	} else {
		cfg.Token = env.getenv("DHIS2_TOKEN")
		if cfg.Token == "" {
			return fmt.Errorf("give --username (password in DHIS2_PASSWORD) or a personal access token in DHIS2_TOKEN")
		}
	}
	client, err := dhis2.New(cfg)
	if err != nil {
		return err
	}
	ades, err := client.AggregateDataExchanges(ctx)
	if err != nil {
		return fmt.Errorf("reading aggregate data exchanges: %w", err)
	}
	if len(ids) > 0 {
		var keep []dhis2.AggregateDataExchange
		for _, a := range ades {
			for _, id := range ids {
				if a.ID == id || a.Code == id {
					keep = append(keep, a)
				}
			}
		}
		if len(keep) != len(ids) {
			return fmt.Errorf("found %d of the %d exchanges asked for", len(keep), len(ids))
		}
		ades = keep
	}
	if len(ades) == 0 {
		return fmt.Errorf("%s has no aggregate data exchanges the user may read", from)
	}
	opts := exchange.ExchangeImportOptions{From: from, Username: user, Now: time.Now()}
	imported := exchange.ImportExchanges(ades, opts)
	text, err := imported.YAML(opts)
	if err != nil {
		return err
	}
	if out == "" {
		_, err = env.stdout.Write(text)
		return err
	}
	if err := os.WriteFile(out, text, 0o600); err != nil {
		return err
	}
	fmt.Fprintf(env.stderr, "wrote %d exchanges and %d targets to %s; set %s\n", len(imported.Exchanges),
		len(imported.Targets), out, strings.Join(imported.Env, ", "))
	return nil
}
