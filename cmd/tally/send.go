package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

func sendCmd() *command {
	c := &command{
		name: "send", usage: "send [--source NAME] [--dry-run] [--url URL] [--token T | --user U [--password P]] FILE",
		summary: "Post a payload file (DVS JSON/XML/CSV, ADX, CHT export) to a running Tally as a source (its token, or its Basic user and password); a refused payload prints every problem. --dry-run previews what each target would receive and how it differs from what the target holds, sending nothing.",
		example: "tally send --source cht --token \"$CHT_TOKEN\" examples/payloads/chw-2024-01.json\n" +
			"TALLY_PASSWORD=\"$EXCHANGE_PASSWORD\" tally send --user exchange examples/payloads/mal-2024-01.csv\n" +
			"TALLY_ADMIN_TOKEN=... tally send --dry-run --source tracker examples/payloads/tracker-2024-02.json",
	}
	c.run = func(ctx context.Context, env *cliEnv, args []string) error {
		fs := c.flags(env)
		api := addAPIFlags(fs, env)
		source := fs.String("source", "", "source to post to (POST /ingest/NAME); empty posts to /api/dataValueSets")
		ctype := fs.String("content-type", "", "Content-Type; by default from the file extension")
		dry := fs.Bool("dry-run", false, "preview through POST /admin/v1/preview (needs --source and the admin token)")
		fs.StringVar(&api.user, "user", "", "a source's Basic user (default $TALLY_USER)")
		fs.StringVar(&api.password, "password", "", "the Basic user's password (default $TALLY_PASSWORD; prefer the variable: arguments show in ps)")
		if err := c.parse(env, fs, args); err != nil {
			return err
		}
		if api.user == "" {
			api.user = env.getenv("TALLY_USER")
		}
		if api.user != "" && api.password == "" {
			api.password = env.getenv("TALLY_PASSWORD")
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errUsage
		}
		file := fs.Arg(0)
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		if *ctype == "" {
			*ctype = contentTypeFor(file)
		}
		path := "/api/dataValueSets"
		switch {
		case *dry && *source == "":
			return fmt.Errorf("--dry-run needs --source: the preview maps with that source's rules")
		case *dry:
			path = "/admin/v1/preview?source=" + url.QueryEscape(*source)
		case *source != "":
			path = "/ingest/" + *source
		}
		var raw json.RawMessage
		if _, err := api.do(ctx, "POST", path, *ctype, f, &raw); err != nil {
			return err
		}
		printJSON(env.stdout, raw)
		return nil
	}
	return c
}

func contentTypeFor(name string) string {
	n := strings.ToLower(strings.TrimSuffix(name, ".gz"))
	switch {
	case strings.HasSuffix(n, ".adx.xml"), strings.HasSuffix(n, ".adx"):
		return "application/adx+xml"
	case filepath.Ext(n) == ".xml":
		return "application/xml"
	case filepath.Ext(n) == ".csv":
		return "application/csv"
	default:
		return "application/json"
	}
}
