package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// apiClient talks to a running Tally's HTTP API for the CLI commands.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

func addAPIFlags(fs *flag.FlagSet, env *cliEnv) *apiClient {
	c := &apiClient{http: &http.Client{Timeout: 5 * time.Minute}}
	base := env.getenv("TALLY_URL")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	fs.StringVar(&c.base, "url", base, "Tally's base URL (env TALLY_URL)")
	fs.StringVar(&c.token, "token", env.getenv("TALLY_ADMIN_TOKEN"), "admin or source token (env TALLY_ADMIN_TOKEN)")
	return c
}

func (c *apiClient) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.base, "/")+path, body)
	if err != nil {
		return 0, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("reading answer of %s: %w", path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &e) == nil && e.Message != "" {
			return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, e.Message)
		}
		return resp.StatusCode, fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(data))
	}
	if out != nil {
		if raw, ok := out.(*json.RawMessage); ok {
			*raw = data
			return resp.StatusCode, nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding answer of %s: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

func printJSON(w io.Writer, raw []byte) {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		w.Write(raw)
		return
	}
	buf.WriteByte('\n')
	w.Write(buf.Bytes())
}
