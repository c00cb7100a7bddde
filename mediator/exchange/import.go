package exchange

import (
	"bytes"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/tally-hmis/tally/adapters/dhis2"
	"github.com/tally-hmis/tally/config"
	"go.yaml.in/yaml/v3"
)

// Migration from DHIS2: `tally exchange import --from URL` reads an instance's aggregate
// data exchanges (GET /api/aggregateDataExchanges) and writes the equivalent Tally
// configuration. Each exchange becomes an entry of exchanges: with the same source
// requests, pulling from the instance it was read from; the target request's id schemes
// become the exchange's id_schemes (how the target reads the ids, exactly as DHIS2's
// exchange posts them), and the target becomes an entry of targets: — the instance itself
// for an INTERNAL exchange, api.url for an EXTERNAL one — with its import options. DHIS2
// never returns the target's password or token (spec dhis2.md §10.1), so credentials are
// written as ${VAR} references for the operator to set.

// ExchangeImportOptions describe the instance the exchanges were read from.
type ExchangeImportOptions struct {
	// From is the instance's base URL; Username is the Basic user Tally should pull as
	// (empty: a personal access token).
	From     string
	Username string
	// Now stamps the header comment.
	Now time.Time
}

// ImportedTarget is a target entry written by an import.
type ImportedTarget struct {
	Name           string `yaml:"name"`
	URL            string `yaml:"url"`
	Username       string `yaml:"username,omitempty"`
	Password       string `yaml:"password,omitempty"`
	Token          string `yaml:"token,omitempty"`
	ImportStrategy string `yaml:"import_strategy,omitempty"`
	DryRun         bool   `yaml:"dry_run,omitempty"`
	SkipAudit      bool   `yaml:"skip_audit,omitempty"`
}

// ImportedConfig is what an import produces: a configuration fragment.
type ImportedConfig struct {
	Targets   []ImportedTarget  `yaml:"targets"`
	Exchanges []config.Exchange `yaml:"exchanges"`
	// Env lists the ${VAR}s the fragment refers to; Notes what the operator should know.
	Env   []string `yaml:"-"`
	Notes []string `yaml:"-"`
}

var slugRE = regexp.MustCompile(`[^a-z0-9_]+`)

func slug(s string, fallback string) string {
	out := strings.Trim(slugRE.ReplaceAllString(strings.ToLower(s), "-"), "-_")
	if len(out) > 48 {
		out = strings.Trim(out[:48], "-_")
	}
	if out == "" {
		return fallback
	}
	return out
}

// envName is the variable an import refers to for a secret of the instance slug names.
func envName(s string) string {
	return "DHIS2_" + strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

func hostSlug(raw, fallback string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fallback
	}
	return slug(u.Hostname()+"-"+strings.ReplaceAll(strings.Trim(u.Path, "/"), "/", "-"), fallback)
}

// ImportExchanges converts aggregate data exchanges into Tally configuration.
func ImportExchanges(ades []dhis2.AggregateDataExchange, o ExchangeImportOptions) *ImportedConfig {
	im := &importer{out: &ImportedConfig{}, env: map[string]bool{}, targets: map[string]string{}, names: map[string]bool{},
		targetNames: map[string]bool{}, srcSlug: hostSlug(o.From, "source")}
	im.source = config.ExchangeSource{URL: strings.TrimRight(o.From, "/")}
	if o.Username != "" {
		im.source.Username, im.source.Password = o.Username, im.useEnv(envName(im.srcSlug)+"_PASSWORD")
	} else {
		im.source.Token = im.useEnv(envName(im.srcSlug) + "_TOKEN")
	}
	for i := range ades {
		im.add(&ades[i])
	}
	out := im.out
	for k := range im.env {
		out.Env = append(out.Env, k)
	}
	sort.Strings(out.Env)
	return out
}

// importer is an import under way: the fragment so far, the variables it refers to, and
// the names taken.
type importer struct {
	out    *ImportedConfig
	env    map[string]bool
	source config.ExchangeSource
	// srcSlug names the instance read from; targets maps a target's identity to its name.
	srcSlug     string
	targets     map[string]string
	names       map[string]bool // exchange names
	targetNames map[string]bool
}

// useEnv refers to variable name, which the operator must set.
func (im *importer) useEnv(name string) string {
	im.env[name] = true
	return "${" + name + "}"
}

// unique is base, or base-2, base-3... when taken.
func (im *importer) unique(base string) string {
	n := base
	for i := 2; im.names[n]; i++ {
		n = fmt.Sprintf("%s-%d", base, i)
	}
	im.names[n] = true
	return n
}

// add converts one aggregate data exchange: its requests and id schemes, and its target
// (an exchange without one is skipped, with a note).
func (im *importer) add(ade *dhis2.AggregateDataExchange) {
	name := im.unique(slug(firstNonEmpty(ade.Code, ade.Name), "exchange"))
	e := config.Exchange{
		Name:        name,
		Description: fmt.Sprintf("%s (aggregate data exchange %s)", ade.Name, ade.ID),
		Source:      im.source,
	}
	for i, r := range ade.Source.Requests {
		e.Requests = append(e.Requests, im.request(name, i, r))
	}
	if p := ade.Source.Params; p != nil && len(p.PeriodTypes) > 0 {
		im.out.Notes = append(im.out.Notes, fmt.Sprintf("%s: source.params.periodTypes (%s) lets DHIS2's app override periods "+
			"at run time; Tally runs the requests' own periods", name, strings.Join(p.PeriodTypes, ", ")))
	}
	tr := ade.Target.Request
	e.IDSchemes = config.ExchangeSchemes{IDScheme: string(tr.IDScheme), DataElement: string(tr.DataElementIDScheme),
		OrgUnit: string(tr.OrgUnitIDScheme), CategoryOptionCombo: string(tr.CategoryOptionComboIDScheme)}
	if e.IDSchemes == (config.ExchangeSchemes{}) {
		e.IDSchemes.IDScheme = "UID" // DHIS2's default: the target reads UIDs
	}
	tname, ok := im.target(ade)
	if !ok {
		im.out.Notes = append(im.out.Notes, fmt.Sprintf("%s: the exchange has no target; skipped", name))
		im.names[name] = false
		return
	}
	e.Targets = []string{tname}
	im.out.Exchanges = append(im.out.Exchanges, e)
}

// request converts the i-th source request of exchange name.
func (im *importer) request(name string, i int, r dhis2.AnalyticsRequest) config.ExchangeRequest {
	er := config.ExchangeRequest{Name: r.Name, DX: r.DX, PE: r.PE, OU: r.OU, AggregationType: r.AggregationType,
		InputIDScheme: string(r.InputIDScheme), OutputIDScheme: string(r.OutputIDScheme),
		OutputDataElementIDScheme: string(r.OutputDataElementIDScheme), OutputOrgUnitIDScheme: string(r.OutputOrgUnitIDScheme),
		OutputDataItemIDScheme: string(r.OutputDataItemIDScheme), DataSet: r.DataSet}
	if er.Name == "" {
		er.Name = fmt.Sprintf("request %d", i+1)
	}
	for _, f := range r.Filters {
		er.Filters = append(er.Filters, config.ExchangeFilter{Dimension: f.Dimension, Items: f.Items})
	}
	if r.Visualization != "" {
		im.out.Notes = append(im.out.Notes, fmt.Sprintf("%s: request %q was made from visualization %s; its dx, pe and ou are "+
			"what runs", name, er.Name, r.Visualization))
	}
	return er
}

// target returns the name of the exchange's target, adding the target to the fragment the
// first time one with its identity (URL, user, import options) is met; false when the
// exchange has no target.
func (im *importer) target(ade *dhis2.AggregateDataExchange) (string, bool) {
	opts := ade.Target.Request.ImportOptions()
	t := ImportedTarget{ImportStrategy: opts.ImportStrategy, DryRun: opts.DryRun, SkipAudit: opts.SkipAudit}
	if strings.EqualFold(t.ImportStrategy, "CREATE_AND_UPDATE") {
		t.ImportStrategy = ""
	}
	var base string
	switch {
	case strings.EqualFold(ade.Target.Type, dhis2.TargetInternal):
		base = im.srcSlug
		t.URL, t.Username, t.Password, t.Token = im.source.URL, im.source.Username, im.source.Password, im.source.Token
	case ade.Target.API != nil:
		base = hostSlug(ade.Target.API.URL, "target")
		t.URL = strings.TrimRight(ade.Target.API.URL, "/")
		if ade.Target.API.Username != "" {
			t.Username, t.Password = ade.Target.API.Username, im.useEnv(envName(base)+"_PASSWORD")
		} else {
			t.Token = im.useEnv(envName(base) + "_TOKEN")
		}
	default:
		return "", false
	}
	identity := fmt.Sprintf("%s|%s|%s|%t|%t", t.URL, t.Username, t.ImportStrategy, t.DryRun, t.SkipAudit)
	if tname, ok := im.targets[identity]; ok {
		return tname, true
	}
	tname := base
	for i := 2; im.targetNames[tname]; i++ {
		tname = fmt.Sprintf("%s-%d", base, i)
	}
	im.targetNames[tname] = true
	im.targets[identity] = tname
	t.Name = tname
	im.out.Targets = append(im.out.Targets, t)
	return tname, true
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// YAML renders the fragment with a header naming where it came from and the variables to
// set.
func (c *ImportedConfig) YAML(o ExchangeImportOptions) ([]byte, error) {
	var doc yaml.Node
	if err := doc.Encode(c); err != nil {
		return nil, err
	}
	var head strings.Builder
	fmt.Fprintf(&head, "Imported by `tally exchange import` from %s", o.From)
	if !o.Now.IsZero() {
		fmt.Fprintf(&head, " on %s", o.Now.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&head, ": %d aggregate data exchanges.\n", len(c.Exchanges))
	if len(c.Env) > 0 {
		fmt.Fprintf(&head, "Set these variables (DHIS2 does not export credentials): %s\n", strings.Join(c.Env, ", "))
	}
	head.WriteString("Add a schedule (\"0 2 * * *\"), and merge these sections into your configuration.\n")
	head.WriteString("Values that drop out of a later run are removed from the target (stale.mode: delete),\n")
	head.WriteString("as DHIS2 2.43's exchange does; set stale: {mode: off} to keep them as older versions do.")
	for _, n := range c.Notes {
		head.WriteString("\nNote: " + n)
	}
	doc.HeadComment = head.String()
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
