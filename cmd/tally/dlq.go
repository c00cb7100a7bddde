package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func dlqCmd() *command {
	c := &command{
		name:    "dlq",
		usage:   "dlq list [FILTERS] [-o table|json|yaml] | dlq show SEQ|ID | dlq replay [--remap] (SEQ|ID... | --all [FILTERS]) | dlq discard [--dry-run] [--yes] (SEQ|ID... | --all [FILTERS])",
		summary: "List, show, replay or discard dead letters (values a target did not take).",
		example: `tally dlq list --target hmis --reason rejected
tally dlq show 42
tally dlq replay 42 43
tally dlq replay --all --target hmis --code E7612 --since 24h --remap
tally dlq discard --all --tx 3f2a9c0d1e4b5a6f7081920a3b4c5d6e --dry-run
tally dlq discard --all --tx 3f2a9c0d1e4b5a6f7081920a3b4c5d6e --yes`,
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		api := addAPIFlags(fs, env)
		var f dlqFilterFlags
		f.add(fs)
		limit := fs.Int("limit", 50, "list at most this many")
		after := fs.Uint64("after", 0, "list entries after this sequence (paging)")
		all := fs.Bool("all", false, "replay or discard every entry matching the filters")
		remap := fs.Bool("remap", false, "map the values again with the current rules before replaying")
		chunk := fs.Int("chunk", 20, "entries per request when replaying or discarding several")
		out := addOutputFlag(fs)
		dryRun := fs.Bool("dry-run", false, "discard: say how many dead letters and values would go, and discard nothing")
		yes := fs.Bool("yes", false, "discard: do not ask for confirmation (needed when standard input is not a terminal)")
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
		asJSON := out.format == "json"
		switch sub {
		case "list":
			if len(rest) != 0 {
				break
			}
			q := f.query()
			q.Set("limit", strconv.Itoa(*limit))
			if *after > 0 {
				q.Set("after", strconv.FormatUint(*after, 10))
			}
			var raw json.RawMessage
			if _, err := api.do(ctx, "GET", "/admin/v1/dlq?"+q.Encode(), "", nil, &raw); err != nil {
				return err
			}
			if done, err := out.print(env.stdout, raw); done || err != nil {
				return err
			}
			return printDLQList(env.stdout, raw)
		case "show":
			if len(rest) != 1 {
				break
			}
			var raw json.RawMessage
			if _, err := api.do(ctx, "GET", "/admin/v1/dlq/"+url.PathEscape(rest[0]), "", nil, &raw); err != nil {
				return err
			}
			if out.format == "yaml" {
				return printYAML(env.stdout, raw)
			}
			printJSON(env.stdout, raw) // a dead letter is a document, not a row: JSON is its table
			return nil
		case "replay", "discard":
			seqs, err := resolveSeqs(ctx, api, rest)
			if err != nil {
				return err
			}
			if (len(seqs) == 0) == !*all {
				fmt.Fprintln(env.stderr, "give the sequences to "+sub+", or --all with optional filters")
				return errUsage
			}
			values := -1 // unknown for sequences given by hand
			if *all {
				if seqs, values, err = matchingSeqs(ctx, api, f.query()); err != nil {
					return err
				}
			}
			if sub == "discard" {
				if ok, err := confirmDiscard(env, len(seqs), values, *dryRun, *yes); !ok || err != nil {
					return err
				}
			}
			return bulkDLQ(ctx, env, api, sub, seqs, *remap, max(*chunk, 1), asJSON)
		}
		fs.Usage()
		return errUsage
	}
	return c
}

// dlqFilterFlags are the filters list, replay --all and discard --all share.
type dlqFilterFlags struct {
	target, source, reason, code, tx, since, until string
}

func (f *dlqFilterFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&f.target, "target", "", "only this target's dead letters")
	fs.StringVar(&f.source, "source", "", "only this source's dead letters")
	fs.StringVar(&f.reason, "reason", "", "only this reason: rejected, permanent, exhausted or mapping")
	fs.StringVar(&f.code, "code", "", "only entries with a conflict of this error code (e.g. E7612)")
	fs.StringVar(&f.tx, "tx", "", "only this transaction's dead letters")
	fs.StringVar(&f.since, "since", "", "dead-lettered at or after: RFC 3339 time, date, or duration ago (24h)")
	fs.StringVar(&f.until, "until", "", "dead-lettered before: RFC 3339 time, date, or duration ago")
}

func (f *dlqFilterFlags) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"target": f.target, "source": f.source, "reason": f.reason, "code": f.code,
		"tx": f.tx, "since": f.since, "until": f.until} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

type dlqEntry struct {
	Seq       uint64    `json:"seq"`
	Stored    time.Time `json:"stored"`
	TxID      string    `json:"txId"`
	Source    string    `json:"source"`
	Target    string    `json:"target"`
	Reason    string    `json:"reason"`
	Error     string    `json:"error"`
	Codes     []string  `json:"codes"`
	Values    int       `json:"values"`
	Attempts  int       `json:"attempts"`
	Replays   int       `json:"replays"`
	LastError time.Time `json:"lastError"`
}

type dlqPage struct {
	DeadLetters []dlqEntry `json:"deadLetters"`
	Total       int        `json:"total"`
	Next        uint64     `json:"next"`
}

func printDLQList(w io.Writer, raw []byte) error {
	var page dlqPage
	if err := json.Unmarshal(raw, &page); err != nil {
		return fmt.Errorf("decoding the list: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tSTORED\tTARGET\tSOURCE\tREASON\tCODES\tVALUES\tATTEMPTS\tREPLAYS\tTX\tERROR")
	for _, d := range page.DeadLetters {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", d.Seq, d.Stored.Local().Format(time.DateTime),
			d.Target, d.Source, d.Reason, strings.Join(d.Codes, ","), d.Values, d.Attempts, d.Replays, d.TxID, clip(d.Error, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.Next != 0 {
		fmt.Fprintf(w, "%d of %d shown; next page: --after %d\n", len(page.DeadLetters), page.Total, page.Next)
	} else {
		fmt.Fprintf(w, "%d dead letters\n", page.Total)
	}
	return nil
}

// matchingSeqs pages through the list to collect every matching sequence, and counts
// their values.
func matchingSeqs(ctx context.Context, api *apiClient, q url.Values) ([]uint64, int, error) {
	var seqs []uint64
	values := 0
	q.Set("limit", "1000")
	for {
		var page dlqPage
		if _, err := api.do(ctx, "GET", "/admin/v1/dlq?"+q.Encode(), "", nil, &page); err != nil {
			return nil, 0, err
		}
		for _, d := range page.DeadLetters {
			seqs = append(seqs, d.Seq)
			values += d.Values
		}
		if page.Next == 0 {
			return seqs, values, nil
		}
		q.Set("after", strconv.FormatUint(page.Next, 10))
	}
}

type bulkResult struct {
	Seq    uint64 `json:"seq"`
	TxID   string `json:"txId"`
	Target string `json:"target"`
	Values int    `json:"values"`
	Status string `json:"status"`
	Error  string `json:"error"`
}

// bulkDLQ replays or discards seqs in chunks, showing progress on stderr.
func bulkDLQ(ctx context.Context, env *cliEnv, api *apiClient, op string, seqs []uint64, remap bool, chunk int, asJSON bool) error {
	if len(seqs) == 0 {
		fmt.Fprintln(env.stdout, "no dead letters match")
		return nil
	}
	prog := newProgress(env.stderr, op, len(seqs))
	var all []bulkResult
	done, failed, values := 0, 0, 0
	for start := 0; start < len(seqs); start += chunk {
		part := seqs[start:min(start+chunk, len(seqs))]
		body, _ := json.Marshal(map[string]any{"seqs": part, "remap": remap})
		var resp struct {
			Results []bulkResult `json:"results"`
		}
		if _, err := api.do(ctx, "POST", "/admin/v1/dlq/"+op, "application/json", bytes.NewReader(body), &resp); err != nil {
			prog.finish()
			return fmt.Errorf("after %d of %d: %w", done, len(seqs), err)
		}
		for _, r := range resp.Results {
			done++
			if r.Status == "failed" {
				failed++
			} else {
				values += r.Values
			}
		}
		all = append(all, resp.Results...)
		prog.update(done, failed)
	}
	prog.finish()
	if asJSON {
		data, _ := json.Marshal(map[string]any{"results": all})
		printJSON(env.stdout, data)
	} else {
		for _, r := range all {
			if r.Status == "failed" {
				fmt.Fprintf(env.stdout, "%d: failed: %s\n", r.Seq, r.Error)
			}
		}
		past := map[string]string{"replay": "replayed", "discard": "discarded"}[op]
		fmt.Fprintf(env.stdout, "%s %d of %d dead letters (%d values); %d failed\n", past, done-failed, len(seqs), values, failed)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d dead letters could not be %sed", failed, len(seqs), op)
	}
	return nil
}

// progress draws a bar on a terminal and prints a line per step elsewhere.
type progress struct {
	w     io.Writer
	op    string
	total int
	tty   bool
}

func newProgress(w io.Writer, op string, total int) *progress {
	p := &progress{w: w, op: op, total: total}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	p.update(0, 0)
	return p
}

func (p *progress) update(done, failed int) {
	const width = 30
	fill := width * done / max(p.total, 1)
	line := fmt.Sprintf("%s [%s%s] %d/%d", p.op, strings.Repeat("#", fill), strings.Repeat(".", width-fill), done, p.total)
	if failed > 0 {
		line += fmt.Sprintf(" (%d failed)", failed)
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s", line)
		return
	}
	fmt.Fprintln(p.w, line)
}

func (p *progress) finish() {
	if p.tty {
		fmt.Fprintln(p.w)
	}
}

// resolveSeqs turns arguments into sequences: a number is one, anything else a dead letter's
// id, looked up.
func resolveSeqs(ctx context.Context, api *apiClient, args []string) ([]uint64, error) {
	seqs := make([]uint64, 0, len(args))
	for _, a := range args {
		if n, err := strconv.ParseUint(a, 10, 64); err == nil && n > 0 {
			seqs = append(seqs, n)
			continue
		}
		var d struct {
			Seq uint64 `json:"seq"`
		}
		if _, err := api.do(ctx, "GET", "/admin/v1/dlq/"+url.PathEscape(a), "", nil, &d); err != nil {
			return nil, fmt.Errorf("dead letter %q: %w", a, err)
		}
		seqs = append(seqs, d.Seq)
	}
	return seqs, nil
}

// parseInterspersed parses flags that may come before, between or after the positional
// arguments ("dlq replay 42 --remap"), returning the positional ones.
func parseInterspersed(c *command, env *cliEnv, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := c.parse(env, fs, args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// confirmDiscard says whether to go on with discarding n dead letters: never on a dry run
// (it prints what would go), at once with --yes, after a "y" on a terminal, and not at all
// otherwise — a script must say --yes, so that a discard is never an accident.
func confirmDiscard(env *cliEnv, n, values int, dryRun, yes bool) (bool, error) {
	what := fmt.Sprintf("%d dead letters", n)
	if values >= 0 {
		what += fmt.Sprintf(" (%d values)", values)
	}
	switch {
	case n == 0:
		return true, nil // bulkDLQ says that nothing matches
	case dryRun:
		fmt.Fprintf(env.stdout, "would discard %s; nothing discarded (dry run)\n", what)
		return false, nil
	case yes:
		return true, nil
	case !isTerminal(env.stdin):
		return false, fmt.Errorf("refusing to discard %s without --yes (standard input is not a terminal); --dry-run shows what would go", what)
	}
	fmt.Fprintf(env.stderr, "Discard %s? Their values will not reach DHIS2. [y/N] ", what)
	answer, _ := bufio.NewReader(env.stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
		fmt.Fprintln(env.stdout, "nothing discarded")
		return false, nil
	}
	return true, nil
}

// isTerminal says whether r is an interactive terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
