package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Tally's metrics the harness reads (GET /metrics, Prometheus text format).
const (
	metricRetries     = "tally_delivery_retries_total"
	metricDeadLetters = "tally_dlq_messages_total"
	metricAttempts    = "tally_delivery_attempts_total"
	metricMapped      = "tally_mapper_values_total"
	// metricConcurrency is the per-target limit of requests in flight that adaptive
	// delivery reports; the harness samples it when Tally exports it.
	metricConcurrency = "tally_delivery_concurrency_limit"
)

// metricSample is one line of a Prometheus text exposition.
type metricSample struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics is one scrape.
type metrics []metricSample

// sum adds the samples of name whose labels include every pair of match; found says
// whether any sample matched.
func (m metrics) sum(name string, match ...string) (total float64, found bool) {
	for _, s := range m {
		if s.name != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(match); i += 2 {
			if s.labels[match[i]] != match[i+1] {
				ok = false
			}
		}
		if ok {
			total, found = total+s.value, true
		}
	}
	return total, found
}

// scrape reads Tally's metrics.
func scrape(ctx context.Context, base string) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading Tally's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading Tally's metrics: HTTP %d", resp.StatusCode)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format: "name{label="value",...} value [time]"
// lines, comments skipped.
func parseMetrics(r io.Reader) (metrics, error) {
	var out metrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		s, err := parseSample(text)
		if err != nil {
			return nil, fmt.Errorf("metrics line %d: %w: %q", line, err, text)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseSample(text string) (metricSample, error) {
	s := metricSample{labels: map[string]string{}}
	end := strings.IndexAny(text, "{ ")
	if end <= 0 {
		return s, fmt.Errorf("no metric name")
	}
	s.name, text = text[:end], text[end:]
	if text[0] == '{' {
		text = text[1:]
		for {
			text = strings.TrimLeft(text, ", ")
			if strings.HasPrefix(text, "}") {
				text = text[1:]
				break
			}
			eq := strings.Index(text, `="`)
			if eq <= 0 {
				return s, fmt.Errorf("bad label")
			}
			name := text[:eq]
			val, rest, err := unquoteLabel(text[eq+2:])
			if err != nil {
				return s, err
			}
			s.labels[name], text = val, rest
		}
	}
	f := strings.Fields(text)
	if len(f) == 0 {
		return s, fmt.Errorf("no value")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, fmt.Errorf("value %q: %w", f[0], err)
	}
	s.value = v
	return s, nil
}

// unquoteLabel reads a label value up to its closing quote, undoing \\, \" and \n.
func unquoteLabel(s string) (val, rest string, err error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 == len(s) {
				return "", "", fmt.Errorf("unterminated escape")
			}
			i++
			if s[i] == 'n' {
				b.WriteByte('\n')
			} else {
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("unterminated label value")
}
