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

	"github.com/tally-hmis/tally/transform"
)

// apiClient talks to a running Tally's HTTP API for the CLI commands.
type apiClient struct {
	base  string
	token string
	// user and password are a source's Basic credentials (send).
	user, password string
	getenv         func(string) string
	http           *http.Client
}

// addAPIFlags adds --url and --token. Their environment fallbacks (TALLY_URL,
// TALLY_ADMIN_TOKEN) are read when a request is made, never as flag defaults: a default
// is printed by --help, and a token must never be.
func addAPIFlags(fs *flag.FlagSet, env *cliEnv) *apiClient {
	c := &apiClient{http: &http.Client{Timeout: 5 * time.Minute}, getenv: env.getenv}
	fs.StringVar(&c.base, "url", "", "Tally's base URL (default $TALLY_URL, else http://127.0.0.1:8080)")
	fs.StringVar(&c.token, "token", "", "an admin credential's token, or a source's token for send (default $TALLY_ADMIN_TOKEN)")
	return c
}

// baseURL is --url, else $TALLY_URL, else the local default.
func (c *apiClient) baseURL() string {
	for _, b := range []string{c.base, c.getenv("TALLY_URL")} {
		if b != "" {
			return strings.TrimRight(b, "/")
		}
	}
	return "http://127.0.0.1:8080"
}

// authorize sets the request's credentials: Basic when a user is given, else the bearer
// token from --token or $TALLY_ADMIN_TOKEN.
func (c *apiClient) authorize(req *http.Request) {
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
		return
	}
	token := c.token
	if token == "" {
		token = c.getenv("TALLY_ADMIN_TOKEN")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
}

func (c *apiClient) do(ctx context.Context, method, path, contentType string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL()+path, body)
	if err != nil {
		return 0, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c.authorize(req)
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
		return resp.StatusCode, answerError(method, path, resp.StatusCode, data)
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

// apiProblem is an error answer of the API: its message and, for a refused payload, every
// problem it listed (the place, the field and value, what was expected).
type apiProblem struct {
	method, path string
	status       int
	message      string
	problems     []*transform.InputError
	more         int
}

func answerError(method, path string, status int, data []byte) error {
	var e struct {
		Message string                  `json:"message"`
		Errors  []*transform.InputError `json:"errors"`
		More    int                     `json:"moreErrors"`
	}
	if json.Unmarshal(data, &e) != nil || e.Message == "" {
		e.Message = string(bytes.TrimSpace(data))
	}
	return &apiProblem{method: method, path: path, status: status, message: e.Message, problems: e.Errors, more: e.More}
}

// Error is the message, then one line per problem: a sender fixes them all in one go.
func (p *apiProblem) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: HTTP %d: %s", p.method, p.path, p.status, p.message)
	if len(p.problems) > 0 {
		fmt.Fprintf(&b, "\n%d problems:", len(p.problems)+p.more)
		for _, e := range p.problems {
			b.WriteString("\n  " + e.Error())
		}
		if p.more > 0 {
			fmt.Fprintf(&b, "\n  … and %d more", p.more)
		}
	}
	return b.String()
}
