package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/tally-hmis/tally/mediator/txlog"
)

func auditCmd() *command {
	c := &command{
		name: "audit", usage: "audit [--who NAME] [--since T] [--until T] [--limit N] [-o table|json|yaml]",
		summary: "List the admin actions (replays, discards, probes, exchange runs, …): who, what, when and how each ended, newest first.",
		example: "tally audit --since 24h\ntally audit --who alice -o json",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		api := addAPIFlags(fs, env)
		who := fs.String("who", "", "only this credential's actions")
		since := fs.String("since", "", "at or after: RFC 3339 time, date, or duration ago (24h)")
		until := fs.String("until", "", "before: RFC 3339 time, date, or duration ago")
		limit := fs.Int("limit", 50, "at most this many")
		out := addOutputFlag(fs)
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		if err := out.check(); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			fs.Usage()
			return errUsage
		}
		q := url.Values{"limit": {strconv.Itoa(*limit)}}
		for k, v := range map[string]string{"who": *who, "since": *since, "until": *until} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var raw json.RawMessage
		if _, err := api.do(ctx, "GET", "/admin/v1/audit?"+q.Encode(), "", nil, &raw); err != nil {
			return err
		}
		if done, err := out.print(env.stdout, raw); done || err != nil {
			return err
		}
		var list struct {
			Audit []*txlog.AuditEntry `json:"audit"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return fmt.Errorf("decoding the audit log: %w", err)
		}
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tWHO\tSCOPE\tACTION\tPATH\tRESULT\tREQUEST ID")
		for _, e := range list.Audit {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Time.Local().Format(time.DateTime), e.Who, e.Scope, e.Action, e.Path, e.Result, e.RequestID)
		}
		return tw.Flush()
	}
	return c
}
