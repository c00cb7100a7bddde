package mediator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/config"
)

// The `notify:` section: where failures and recoveries of exchanges are reported. Channels
// are JSON webhooks and DHIS2 message conversations; an exchange names the channels it
// tells (all of them by default). Notifications are throttled per exchange so that one
// outage is one message: a "failed" message when an exchange starts failing (after
// `after` failed runs in a row), a "recovered" message at its next successful run, and
// nothing in between unless `repeat` asks for reminders. The state lives in tally_state,
// so every replica agrees.

// NotifyConfig is the `notify:` section.
type NotifyConfig struct {
	// After is the number of failed runs in a row before "failed" is sent (default 1).
	After int `yaml:"after,omitempty"`
	// Repeat re-sends "failed" while an exchange keeps failing, at most this often; 0 (the
	// default) sends it once per outage.
	Repeat   config.Duration `yaml:"repeat,omitempty"`
	Webhooks []NotifyWebhook `yaml:"webhooks,omitempty"`
	DHIS2    []NotifyDHIS2   `yaml:"dhis2,omitempty"`
}

// NotifyWebhook posts a JSON document to a URL.
type NotifyWebhook struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Headers are sent with every post (an Authorization header, say); values are never logged.
	Headers map[string]string `yaml:"headers,omitempty"`
	Timeout config.Duration   `yaml:"timeout,omitempty"`
}

// NotifyDHIS2 sends a DHIS2 message conversation to user groups and users of an instance:
// a configured target's (Target), or one given by URL and credentials.
type NotifyDHIS2 struct {
	Name       string          `yaml:"name"`
	Target     string          `yaml:"target,omitempty"`
	URL        string          `yaml:"url,omitempty"`
	Username   string          `yaml:"username,omitempty"`
	Password   string          `yaml:"password,omitempty"`
	Token      string          `yaml:"token,omitempty"`
	UserGroups []string        `yaml:"user_groups,omitempty,flow"`
	Users      []string        `yaml:"users,omitempty,flow"`
	Timeout    config.Duration `yaml:"timeout,omitempty"`
}

func (n *NotifyConfig) channelNames() map[string]bool {
	out := map[string]bool{}
	for _, w := range n.Webhooks {
		out[w.Name] = true
	}
	for _, d := range n.DHIS2 {
		out[d.Name] = true
	}
	return out
}

// decodeNotify decodes and checks the `notify:` section.
func decodeNotify(cfg *config.Config, sec *Sections) config.Problems {
	probs := cfg.DecodeSection(&cfg.Notify, "notify", &sec.Notify)
	n := &sec.Notify
	if n.After == 0 {
		n.After = 1
	}
	add := func(path, format string, args ...any) { probs = append(probs, cfg.Problem(path, format, args...)) }
	if n.After < 1 {
		add("notify.after", "%d: want at least 1", n.After)
	}
	if n.Repeat < 0 {
		add("notify.repeat", "may not be negative")
	}
	names := map[string]bool{}
	name := func(path, v string) {
		switch {
		case !exchangeNameRE.MatchString(v):
			add(path, "%q: a name is 1-64 letters, digits, '-' or '_'", v)
		case names[v]:
			add(path, "%q is defined twice", v)
		}
		names[v] = true
	}
	for i := range n.Webhooks {
		w := &n.Webhooks[i]
		p := fmt.Sprintf("notify.webhooks[%d]", i)
		name(p+".name", w.Name)
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(p+".url", "%q is not an http(s) URL", w.URL)
		}
		if w.Timeout == 0 {
			w.Timeout = config.Duration(10 * time.Second)
		}
		for k := range w.Headers {
			if k == "" || strings.ContainsAny(k, " :\r\n") {
				add(p+".headers", "%q is not a header name", k)
			}
		}
	}
	for i := range n.DHIS2 {
		d := &n.DHIS2[i]
		p := fmt.Sprintf("notify.dhis2[%d]", i)
		name(p+".name", d.Name)
		if d.Timeout == 0 {
			d.Timeout = config.Duration(30 * time.Second)
		}
		own := d.URL != "" || d.Username != "" || d.Password != "" || d.Token != ""
		switch {
		case d.Target != "" && own:
			add(p, "set either target or url and credentials, not both")
		case d.Target != "":
			if _, ok := cfg.Target(d.Target); !ok {
				add(p+".target", "no target is called %q", d.Target)
			}
		default:
			if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				add(p+".url", "%q is not an http(s) URL of a DHIS2 instance (or name a target)", d.URL)
			}
			basic, token := d.Username != "" || d.Password != "", d.Token != ""
			switch {
			case basic && token:
				add(p, "set either username/password or token, not both")
			case !basic && !token:
				add(p, "no credentials: set username and password, or a personal access token")
			case basic && (d.Username == "" || d.Password == ""):
				add(p, "Basic auth needs both username and password")
			}
		}
		if len(d.UserGroups)+len(d.Users) == 0 {
			add(p, "no recipients: list user_groups or users (UIDs)")
		}
	}
	return probs
}

// Notification events.
const (
	EventExchangeFailed    = "exchange.failed"
	EventExchangeRecovered = "exchange.recovered"
)

// Notification is what a channel is told; it is the JSON body a webhook receives.
type Notification struct {
	Event    string    `json:"event"`
	Exchange string    `json:"exchange"`
	Time     time.Time `json:"time"`
	// Since is when the exchange started failing; Failures counts the failed runs since.
	Since    time.Time `json:"since,omitzero"`
	Failures int       `json:"failures,omitempty"`
	// Reminder is set on a repeated "failed" message.
	Reminder    bool   `json:"reminder,omitempty"`
	Error       string `json:"error,omitempty"`
	Transaction string `json:"transaction,omitempty"`
	Run         string `json:"run,omitempty"` // the admin API path of the run
}

func (n *Notification) subject() string {
	if n.Event == EventExchangeRecovered {
		return "Tally: exchange " + n.Exchange + " recovered"
	}
	if n.Reminder {
		return "Tally: exchange " + n.Exchange + " is still failing"
	}
	return "Tally: exchange " + n.Exchange + " failed"
}

func (n *Notification) text() string {
	var b strings.Builder
	switch n.Event {
	case EventExchangeRecovered:
		fmt.Fprintf(&b, "The exchange %s ran successfully at %s", n.Exchange, n.Time.Format(time.RFC3339))
		if !n.Since.IsZero() {
			fmt.Fprintf(&b, " after failing since %s (%d failed runs)", n.Since.Format(time.RFC3339), n.Failures)
		}
		b.WriteString(".")
	default:
		fmt.Fprintf(&b, "The exchange %s failed at %s", n.Exchange, n.Time.Format(time.RFC3339))
		if n.Failures > 1 {
			fmt.Fprintf(&b, " (%d failed runs since %s)", n.Failures, n.Since.Format(time.RFC3339))
		}
		fmt.Fprintf(&b, ":\n\n%s", n.Error)
	}
	if n.Transaction != "" {
		fmt.Fprintf(&b, "\n\nTally transaction: %s", n.Transaction)
	}
	b.WriteString("\n\nTally sends one message when an exchange starts failing and one when it recovers.")
	return b.String()
}

// notifier sends notifications to one channel.
type notifier interface {
	name() string
	send(ctx context.Context, n *Notification) error
}

type webhookNotifier struct {
	cfg NotifyWebhook
	hc  *http.Client
}

func (w *webhookNotifier) name() string { return w.cfg.Name }

func (w *webhookNotifier) send(ctx context.Context, n *Notification) error {
	body, err := json.Marshal(n)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook %s: %w", w.cfg.Name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tally")
	for k, v := range w.cfg.Headers {
		req.Header.Set(k, v)
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		// The URL may carry a secret in its query: name the channel, not the URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("webhook %s: %w", w.cfg.Name, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: HTTP %d", w.cfg.Name, resp.StatusCode)
	}
	return nil
}

type dhis2Notifier struct {
	cfg    NotifyDHIS2
	client *dhis2.Client
}

func (d *dhis2Notifier) name() string { return d.cfg.Name }

func (d *dhis2Notifier) send(ctx context.Context, n *Notification) error {
	if _, err := d.client.SendMessage(ctx, n.subject(), n.text(), d.cfg.UserGroups, d.cfg.Users); err != nil {
		return fmt.Errorf("DHIS2 message %s: %w", d.cfg.Name, err)
	}
	return nil
}

// buildNotifiers makes the channels of the notify section.
func buildNotifiers(cfg *config.Config, n *NotifyConfig, hc *http.Client, version string) ([]notifier, error) {
	var out []notifier
	whc := hc
	if whc == nil {
		whc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	for _, w := range n.Webhooks {
		out = append(out, &webhookNotifier{cfg: w, hc: whc})
	}
	for _, d := range n.DHIS2 {
		c := dhis2.Config{BaseURL: d.URL, Username: d.Username, Password: d.Password, Token: d.Token,
			Timeout: d.Timeout.D(), HTTPClient: hc, UserAgent: "tally/" + version}
		if t, ok := cfg.Target(d.Target); ok && d.Target != "" {
			c.BaseURL, c.Username, c.Password, c.Token, c.APIVersion = t.URL, t.Username, t.Password, t.Token, t.APIVersion
		}
		client, err := dhis2.New(c)
		if err != nil {
			return nil, fmt.Errorf("notify channel %s: %w", d.Name, err)
		}
		out = append(out, &dhis2Notifier{cfg: d, client: client})
	}
	return out, nil
}
