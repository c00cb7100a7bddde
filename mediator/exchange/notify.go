package exchange

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform"
)

// The `notify:` section: where failures and recoveries of exchanges are reported. Channels
// are JSON webhooks and DHIS2 message conversations; an exchange names the channels it
// tells (all of them by default). Notifications are throttled per exchange so that one
// outage is one message: a "failed" message when an exchange starts failing (after
// `after` failed runs in a row), a "recovered" message at its next successful run, and
// nothing in between unless `repeat` asks for reminders. The state lives in tally_state,
// so every replica agrees.

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
	// Target or Source is what a target or dead-letter message is about (watch.go);
	// DeadLetters how many wait, Transactions the first transactions they belong to, Link
	// the console page to look at.
	Target       string   `json:"target,omitempty"`
	Source       string   `json:"source,omitempty"`
	DeadLetters  int      `json:"deadLetters,omitempty"`
	Transactions []string `json:"transactions,omitempty"`
	Link         string   `json:"link,omitempty"`
}

func (n *Notification) subject() string {
	switch n.Event {
	case EventTargetUnreachable:
		return "Tally: target " + n.Target + " unreachable"
	case EventTargetRecovered:
		return "Tally: target " + n.Target + " recovered"
	case EventDeadLettersAbove, EventDeadLettersResolved:
		who := "target " + n.Target
		if n.Source != "" {
			who = "source " + n.Source
		}
		if n.Event == EventDeadLettersAbove {
			return fmt.Sprintf("Tally: %d dead letters waiting for %s", n.DeadLetters, who)
		}
		return "Tally: dead letters for " + who + " resolved"
	}
	if n.Event == EventExchangeRecovered {
		return "Tally: exchange " + n.Exchange + " recovered"
	}
	if n.Reminder {
		return "Tally: exchange " + n.Exchange + " is still failing"
	}
	return "Tally: exchange " + n.Exchange + " failed"
}

func (n *Notification) text() string {
	if n.Exchange == "" {
		return n.incidentText()
	}
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
	cfg config.NotifyWebhook
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
	cfg    config.NotifyDHIS2
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
func buildNotifiers(cfg *config.Config, n *config.Notify, hc *http.Client, version string) ([]notifier, error) {
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

// notifyRun updates the exchange's health and tells its channels when it starts failing
// (after notify.after failed runs in a row), optionally reminds while it keeps failing
// (notify.repeat), and says when it recovers: one outage, one message.
func (x *Runner) notifyRun(ctx context.Context, e *exchange, run *ExchangeRun) {
	key := exchangeKey(e.cfg.Name, "health")
	var h exchangeHealth
	if _, err := x.store.loadJSONState(ctx, key, &h); err != nil {
		x.log.Warn("reading exchange health", "exchange", e.cfg.Name, "err", err)
	}
	now := run.Finished
	if n := h.next(run, x.notify); n != nil {
		n.Exchange, n.Time, n.Since, n.Failures, n.Transaction = e.cfg.Name, now, h.Since, h.Failures, run.Transaction
		if n.Event == EventExchangeFailed {
			n.Error = run.Error
		}
		if run.Transaction != "" {
			n.Run = "/admin/v1/exchanges/" + e.cfg.Name + "/runs/" + run.Transaction
		}
		sent := x.send(ctx, x.log, e, n, run)
		if n.Event == EventExchangeFailed && (sent || len(x.channelsOf(e)) == 0) {
			h.Notified, h.LastNotified = true, now
		}
	}
	if run.Status == RunSucceeded {
		h = exchangeHealth{LastSuccess: now}
	}
	if err := x.store.putJSONState(ctx, key, h); err != nil {
		x.log.Warn("recording exchange health", "exchange", e.cfg.Name, "err", err)
	}
}

// next counts the run into the health and returns what to tell the channels, if anything:
// failed once notify.after runs in a row failed, again every notify.repeat while it keeps
// failing, and recovered after a failure that was told.
func (h *exchangeHealth) next(run *ExchangeRun, nc config.Notify) *Notification {
	now := run.Finished
	if run.Status == RunSucceeded {
		if h.Failing && h.Notified {
			return &Notification{Event: EventExchangeRecovered}
		}
		return nil
	}
	if !h.Failing {
		*h = exchangeHealth{Failing: true, Since: now, LastSuccess: h.LastSuccess}
	}
	h.Failures++
	h.LastError = run.Error
	switch {
	case !h.Notified && h.Failures >= nc.After:
		return &Notification{Event: EventExchangeFailed}
	case h.Notified && nc.Repeat > 0 && now.Sub(h.LastNotified) >= nc.Repeat.D():
		return &Notification{Event: EventExchangeFailed, Reminder: true}
	}
	return nil
}

// channelsOf returns the notification channels an exchange tells.
func (s *Set) channelsOf(e *exchange) []notifier {
	var out []notifier
	if e.cfg.Notify == nil {
		names := make([]string, 0, len(s.notifiers))
		for name := range s.notifiers {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			out = append(out, s.notifiers[name])
		}
		return out
	}
	for _, name := range e.cfg.Notify {
		if n, ok := s.notifiers[name]; ok {
			out = append(out, n)
		}
	}
	return out
}

// send tells every channel of the exchange; it reports whether one took it.
func (s *Set) send(ctx context.Context, log *slog.Logger, e *exchange, n *Notification, run *ExchangeRun) bool {
	sent := false
	for _, ch := range s.channelsOf(e) {
		if err := ch.send(ctx, n); err != nil {
			log.Warn("notification failed", "exchange", e.cfg.Name, "channel", ch.name(), "event", n.Event, "err", err)
			run.Notified = append(run.Notified, n.Event+" → "+ch.name()+" failed: "+transform.ClipText(err.Error(), 200))
			continue
		}
		sent = true
		run.Notified = append(run.Notified, n.Event+" → "+ch.name())
	}
	return sent
}
