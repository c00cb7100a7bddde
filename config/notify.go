package config

import (
	"fmt"
	"net/url"
	"strings"
	"time"
)

// The `notify:` section: where failures and recoveries of exchanges are reported. Channels
// are JSON webhooks and DHIS2 message conversations; an exchange names the channels it
// tells (all of them by default). docs/exchanges.md describes every key.

// Notify is the `notify:` section.
type Notify struct {
	// After is the number of failed runs in a row before "failed" is sent (default 1).
	After int `yaml:"after,omitempty"`
	// Repeat re-sends "failed" while an exchange keeps failing, at most this often; 0 (the
	// default) sends it once per outage.
	Repeat   Duration        `yaml:"repeat,omitempty"`
	Webhooks []NotifyWebhook `yaml:"webhooks,omitempty"`
	DHIS2    []NotifyDHIS2   `yaml:"dhis2,omitempty"`
	// Targets tells every channel when a target has been unreachable longer than
	// UnreachableAfter, once per incident and once on recovery; 0 (the default) does not.
	Targets NotifyTargets `yaml:"targets,omitempty"`
	// DeadLetters tells every channel when the dead letters waiting for a target, or from a
	// source, exceed Above, once per incident and once they are back at or below it.
	DeadLetters NotifyDeadLetters `yaml:"dead_letters,omitempty"`
	// ConsoleURL is the base URL of Tally's console as operators reach it; messages link to
	// its pages under /console/ (empty: no links).
	ConsoleURL string `yaml:"console_url,omitempty"`
	// CheckInterval is how often targets and dead letters are looked at (default 30s).
	CheckInterval Duration `yaml:"check_interval,omitempty"`
}

// NotifyTargets says when an unreachable target is worth a message.
type NotifyTargets struct {
	UnreachableAfter Duration `yaml:"unreachable_after,omitempty"`
}

// NotifyDeadLetters says how many waiting dead letters are worth a message.
type NotifyDeadLetters struct {
	Above int `yaml:"above,omitempty"`
}

// NotifyWebhook posts a JSON document to a URL.
type NotifyWebhook struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// Headers are sent with every post (an Authorization header, say); values are never logged.
	Headers map[string]string `yaml:"headers,omitempty"`
	Timeout Duration          `yaml:"timeout,omitempty"`
}

// NotifyDHIS2 sends a DHIS2 message conversation to user groups and users of an instance:
// a configured target's (Target), or one given by URL and credentials.
type NotifyDHIS2 struct {
	Name       string   `yaml:"name"`
	Target     string   `yaml:"target,omitempty"`
	URL        string   `yaml:"url,omitempty"`
	Username   string   `yaml:"username,omitempty"`
	Password   string   `yaml:"password,omitempty"`
	Token      string   `yaml:"token,omitempty"`
	UserGroups []string `yaml:"user_groups,omitempty,flow"`
	Users      []string `yaml:"users,omitempty,flow"`
	Timeout    Duration `yaml:"timeout,omitempty"`
}

func (n *Notify) channelNames() map[string]bool {
	out := map[string]bool{}
	for _, w := range n.Webhooks {
		out[w.Name] = true
	}
	for _, d := range n.DHIS2 {
		out[d.Name] = true
	}
	return out
}

// DecodeNotify decodes and checks the `notify:` section, with its defaults applied.
func (c *Config) DecodeNotify() (Notify, Problems) {
	var out Notify
	k := &checker{c: c}
	k.ps = c.DecodeSection(&c.Notify, "notify", &out)
	n := &out
	if n.After == 0 {
		n.After = 1
	}
	if n.After < 1 {
		k.add("notify.after", "%d: want at least 1", n.After)
	}
	if n.Repeat < 0 {
		k.add("notify.repeat", "may not be negative")
	}
	if n.CheckInterval == 0 {
		n.CheckInterval = Duration(30 * time.Second)
	}
	if n.CheckInterval < 0 || n.Targets.UnreachableAfter < 0 || n.DeadLetters.Above < 0 {
		k.add("notify", "check_interval, targets.unreachable_after and dead_letters.above may not be negative")
	}
	if n.ConsoleURL != "" {
		if u, err := url.Parse(n.ConsoleURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			k.add("notify.console_url", "%q is not an http(s) base URL without credentials", n.ConsoleURL)
		}
	}
	names := map[string]bool{}
	for i := range n.Webhooks {
		n.Webhooks[i].check(k, fmt.Sprintf("notify.webhooks[%d]", i), names)
	}
	for i := range n.DHIS2 {
		c.checkDHIS2Channel(k, fmt.Sprintf("notify.dhis2[%d]", i), &n.DHIS2[i], names)
	}
	return out, k.ps
}

// checkChannelName checks a channel's name, unique among names.
func checkChannelName(k *checker, path, v string, names map[string]bool) {
	switch {
	case !exchangeNameRE.MatchString(v):
		k.add(path, "%q: a name is 1-64 letters, digits, '-' or '_'", v)
	case names[v]:
		k.add(path, "%q is defined twice", v)
	}
	names[v] = true
}

// check checks the webhook written at p, and applies its default timeout.
func (w *NotifyWebhook) check(k *checker, p string, names map[string]bool) {
	checkChannelName(k, p+".name", w.Name, names)
	if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		k.add(p+".url", "%q is not an http(s) URL", w.URL)
	}
	if w.Timeout == 0 {
		w.Timeout = Duration(10 * time.Second)
	}
	for h := range w.Headers {
		if h == "" || strings.ContainsAny(h, " :\r\n") {
			k.add(p+".headers", "%q is not a header name", h)
		}
	}
}

// checkDHIS2Channel checks the DHIS2 message channel written at p, and applies its default
// timeout: a configured target, or a URL with credentials, and recipients.
func (c *Config) checkDHIS2Channel(k *checker, p string, d *NotifyDHIS2, names map[string]bool) {
	checkChannelName(k, p+".name", d.Name, names)
	if d.Timeout == 0 {
		d.Timeout = Duration(30 * time.Second)
	}
	own := d.URL != "" || d.Username != "" || d.Password != "" || d.Token != ""
	switch {
	case d.Target != "" && own:
		k.add(p, "set either target or url and credentials, not both")
	case d.Target != "":
		if _, ok := c.Target(d.Target); !ok {
			k.add(p+".target", "no target is called %q", d.Target)
		}
	default:
		if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			k.add(p+".url", "%q is not an http(s) URL of a DHIS2 instance (or name a target)", d.URL)
		}
		basic, token := d.Username != "" || d.Password != "", d.Token != ""
		switch {
		case basic && token:
			k.add(p, "set either username/password or token, not both")
		case !basic && !token:
			k.add(p, "no credentials: set username and password, or a personal access token")
		case basic && (d.Username == "" || d.Password == ""):
			k.add(p, "Basic auth needs both username and password")
		}
	}
	if len(d.UserGroups)+len(d.Users) == 0 {
		k.add(p, "no recipients: list user_groups or users (UIDs)")
	}
}
