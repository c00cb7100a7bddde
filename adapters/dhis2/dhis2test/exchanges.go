package dhis2test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Aggregate data exchanges (spec dhis2.md §10), served from 2.39.
//
//   - GET /api/aggregateDataExchanges[/{uid}]: the metadata API
//     (metadata_api.go); target.api shows url and username only, never the
//     access token or password (ApiSerializer, §10.1).
//   - GET /api/aggregateDataExchanges/{uid}/sourceDataValueSets: a JSON array
//     with one data value set per source request, computed by the analytics
//     engine (analytics.go) from the request's dx/pe/ou, filters,
//     aggregationType, inputIdScheme and output id schemes (§10.3);
//     ?outputIdScheme= overrides the requests' general output scheme (§10.7).
//   - GET /api/aggregateDataExchanges/{uid}/sourceData: the same as a JSON
//     array of analytics grids (headers dx, pe, ou, value).
//   - POST /api/aggregateDataExchanges/{uid}/exchange, and
//     POST /api/aggregateDataExchanges/exchange with an inline exchange as
//     body, run the exchange: each source request's data value set is
//     imported, for an INTERNAL target into this server's store (the
//     dataValueSets importer with the target request's id schemes and, from
//     2.41, importStrategy/dryRun/skipAudit), for an EXTERNAL target by
//     POSTing it to {api.url}/api/dataValueSets as DHIS2's client does
//     (§10.4: Accept and Content-Type application/json, "ApiToken <token>"
//     or Basic, query parameters per version era; a 200 or 409 body is read
//     as a WebMessage or a bare summary, another 4xx becomes ERROR "Data
//     import to target instance failed with status: '<code> <REASON>'").
//     The 2.43+ deletion scope is not sent. The answer is ImportSummaries
//     (§10.5): bare with 200 on 2.39.0–2.39.5 and 2.40.0–2.40.3, otherwise a
//     WebMessage, 409 on WARNING or ERROR.
//
// Data sharing (who may read or run an exchange) is not modelled: every
// authenticated user may. source.params.periodTypes is served but not
// applied. Creating, updating and deleting exchanges through
// the API is not served; tests edit Metadata.AggregateDataExchanges with
// Server.UpdateMetadata.

// AggregateDataExchange is an aggregate data exchange (§10.1).
type AggregateDataExchange struct {
	ID     string         `json:"id" yaml:"id"`
	Code   string         `json:"code,omitempty" yaml:"code,omitempty"`
	Name   string         `json:"name" yaml:"name"`
	Source ExchangeSource `json:"source" yaml:"source"`
	Target ExchangeTarget `json:"target" yaml:"target"`
}

// ExchangeSource is an exchange's source: analytics requests.
type ExchangeSource struct {
	Params   *ExchangeSourceParams   `json:"params,omitempty" yaml:"params,omitempty"`
	Requests []ExchangeSourceRequest `json:"requests" yaml:"requests"`
}

// ExchangeSourceParams holds the period types a source request's periods may
// be overridden with.
type ExchangeSourceParams struct {
	PeriodTypes []string `json:"periodTypes,omitempty" yaml:"periodTypes,omitempty"`
}

// ExchangeSourceRequest is one analytics request of an exchange source.
// Identifiers in DX, OU and Filters are written in InputIDScheme.
type ExchangeSourceRequest struct {
	Name                      string           `json:"name" yaml:"name"`
	Visualization             string           `json:"visualization,omitempty" yaml:"visualization,omitempty"`
	DX                        []string         `json:"dx" yaml:"dx"`
	PE                        []string         `json:"pe" yaml:"pe"`
	OU                        []string         `json:"ou" yaml:"ou"`
	Filters                   []ExchangeFilter `json:"filters,omitempty" yaml:"filters,omitempty"`
	AggregationType           string           `json:"aggregationType,omitempty" yaml:"aggregationType,omitempty"`
	InputIDScheme             string           `json:"inputIdScheme,omitempty" yaml:"inputIdScheme,omitempty"`
	OutputDataElementIDScheme string           `json:"outputDataElementIdScheme,omitempty" yaml:"outputDataElementIdScheme,omitempty"`
	OutputOrgUnitIDScheme     string           `json:"outputOrgUnitIdScheme,omitempty" yaml:"outputOrgUnitIdScheme,omitempty"`
	OutputDataItemIDScheme    string           `json:"outputDataItemIdScheme,omitempty" yaml:"outputDataItemIdScheme,omitempty"`
	OutputIDScheme            string           `json:"outputIdScheme,omitempty" yaml:"outputIdScheme,omitempty"`
	DataSet                   string           `json:"dataSet,omitempty" yaml:"dataSet,omitempty"`
}

// ExchangeFilter is a filter dimension of a source request.
type ExchangeFilter struct {
	Dimension string   `json:"dimension" yaml:"dimension"`
	Items     []string `json:"items,omitempty" yaml:"items,omitempty"`
}

// ExchangeTarget is where an exchange imports: INTERNAL or EXTERNAL.
type ExchangeTarget struct {
	Type    string                 `json:"type" yaml:"type"`
	API     *ExchangeAPI           `json:"api,omitempty" yaml:"api,omitempty"`
	Request *ExchangeTargetRequest `json:"request,omitempty" yaml:"request,omitempty"`
}

// ExchangeAPI is an EXTERNAL target: the DHIS2 base URL (without /api) and
// credentials (an access token wins over username and password).
type ExchangeAPI struct {
	URL         string `json:"url" yaml:"url"`
	AccessToken string `json:"accessToken,omitempty" yaml:"accessToken,omitempty"`
	Username    string `json:"username,omitempty" yaml:"username,omitempty"`
	Password    string `json:"password,omitempty" yaml:"password,omitempty"`
}

// ExchangeTargetRequest holds the import options of a target (ImportStrategy,
// SkipAudit and DryRun from 2.41).
type ExchangeTargetRequest struct {
	DataElementIDScheme         string `json:"dataElementIdScheme,omitempty" yaml:"dataElementIdScheme,omitempty"`
	OrgUnitIDScheme             string `json:"orgUnitIdScheme,omitempty" yaml:"orgUnitIdScheme,omitempty"`
	CategoryOptionComboIDScheme string `json:"categoryOptionComboIdScheme,omitempty" yaml:"categoryOptionComboIdScheme,omitempty"`
	IDScheme                    string `json:"idScheme,omitempty" yaml:"idScheme,omitempty"`
	ImportStrategy              string `json:"importStrategy,omitempty" yaml:"importStrategy,omitempty"`
	SkipAudit                   *bool  `json:"skipAudit,omitempty" yaml:"skipAudit,omitempty"`
	DryRun                      *bool  `json:"dryRun,omitempty" yaml:"dryRun,omitempty"`
}

func (s *Server) exchangeRoutes() []route {
	return []route{
		{pattern: "GET /aggregateDataExchanges/{uid}/sourceDataValueSets", handler: s.handleSourceDataValueSets},
		{pattern: "GET /aggregateDataExchanges/{uid}/sourceData", handler: s.handleSourceData},
		{pattern: "POST /aggregateDataExchanges/{uid}/exchange", handler: s.handleRunExchange},
		{pattern: "POST /aggregateDataExchanges/exchange", handler: s.handleRunInlineExchange},
	}
}

// exchange finds an exchange by UID.
func (m *Metadata) exchange(uid string) *AggregateDataExchange {
	for _, e := range m.AggregateDataExchanges {
		if e.ID == uid {
			return e
		}
	}
	return nil
}

// exchangeRepresentation renders an exchange for the metadata API.
func exchangeRepresentation(e *AggregateDataExchange) orderedMap {
	strs := func(l []string) []any {
		out := make([]any, len(l))
		for i, s := range l {
			out[i] = s
		}
		return out
	}
	var requests []orderedMap
	for _, r := range e.Source.Requests {
		o := orderedMap{{"name", r.Name}, {"visualization", nilIfEmpty(r.Visualization)}, {"dx", strs(r.DX)},
			{"pe", strs(r.PE)}, {"ou", strs(r.OU)}}
		var filters []orderedMap
		for _, f := range r.Filters {
			filters = append(filters, orderedMap{{"dimension", f.Dimension}, {"items", strs(f.Items)}})
		}
		o = append(o, kv{"filters", orEmpty(filters)}, kv{"aggregationType", nilIfEmpty(r.AggregationType)},
			kv{"inputIdScheme", nilIfEmpty(r.InputIDScheme)}, kv{"outputDataElementIdScheme", nilIfEmpty(r.OutputDataElementIDScheme)},
			kv{"outputOrgUnitIdScheme", nilIfEmpty(r.OutputOrgUnitIDScheme)}, kv{"outputDataItemIdScheme", nilIfEmpty(r.OutputDataItemIDScheme)},
			kv{"outputIdScheme", nilIfEmpty(r.OutputIDScheme)}, kv{"dataSet", nilIfEmpty(r.DataSet)})
		requests = append(requests, o)
	}
	source := orderedMap{}
	if e.Source.Params != nil {
		source = append(source, kv{"params", orderedMap{{"periodTypes", strs(e.Source.Params.PeriodTypes)}}})
	}
	source = append(source, kv{"requests", orEmpty(requests)})
	target := orderedMap{{"type", e.Target.Type}}
	if a := e.Target.API; a != nil {
		target = append(target, kv{"api", orderedMap{{"url", a.URL}, {"username", nilIfEmpty(a.Username)}}})
	}
	if tr := e.Target.Request; tr != nil {
		req := orderedMap{{"dataElementIdScheme", nilIfEmpty(tr.DataElementIDScheme)}, {"orgUnitIdScheme", nilIfEmpty(tr.OrgUnitIDScheme)},
			{"categoryOptionComboIdScheme", nilIfEmpty(tr.CategoryOptionComboIDScheme)}, {"idScheme", nilIfEmpty(tr.IDScheme)},
			{"importStrategy", nilIfEmpty(tr.ImportStrategy)}}
		if tr.SkipAudit != nil {
			req = append(req, kv{"skipAudit", *tr.SkipAudit})
		}
		if tr.DryRun != nil {
			req = append(req, kv{"dryRun", *tr.DryRun})
		}
		target = append(target, kv{"request", req})
	}
	o := identifiable(e.ID, e.Code, e.Name)
	return append(o, kv{"source", source}, kv{"target", target})
}

func (pc *projector) exchanges() []orderedMap {
	out := make([]orderedMap, 0, len(pc.m.AggregateDataExchanges))
	for _, e := range pc.m.AggregateDataExchanges {
		out = append(out, exchangeRepresentation(e))
	}
	return out
}

// sourceQuery turns a source request into analytics query parameters.
func sourceQuery(r ExchangeSourceRequest, outputOverride string) url.Values {
	q := url.Values{}
	for _, d := range []struct {
		name  string
		items []string
	}{{"dx", r.DX}, {"pe", r.PE}, {"ou", r.OU}} {
		if len(d.items) > 0 {
			q.Add("dimension", d.name+":"+strings.Join(d.items, ";"))
		}
	}
	for _, f := range r.Filters {
		if len(f.Items) == 0 {
			q.Add("filter", f.Dimension)
		} else {
			q.Add("filter", f.Dimension+":"+strings.Join(f.Items, ";"))
		}
	}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("inputIdScheme", r.InputIDScheme)
	set("outputDataElementIdScheme", r.OutputDataElementIDScheme)
	set("outputOrgUnitIdScheme", r.OutputOrgUnitIDScheme)
	set("outputDataItemIdScheme", r.OutputDataItemIDScheme)
	set("outputIdScheme", r.OutputIDScheme)
	set("outputIdScheme", outputOverride)
	set("aggregationType", r.AggregationType)
	return q
}

// exchangeFor resolves the {uid} of an exchange endpoint or writes the error.
func (s *Server) exchangeFor(w http.ResponseWriter, r *http.Request) (*Metadata, *AggregateDataExchange, bool) {
	if s.version.Minor < 39 {
		writeError(w, r, http.StatusNotFound, "Not found: "+r.URL.Path)
		return nil, nil, false
	}
	m := s.metadataSnapshot()
	uid := r.PathValue("uid")
	e := m.exchange(uid)
	if e == nil {
		writeError(w, r, http.StatusNotFound, "AggregateDataExchange with id "+uid+" could not be found.")
		return nil, nil, false
	}
	return m, e, true
}

func (s *Server) handleSourceDataValueSets(w http.ResponseWriter, r *http.Request) {
	m, e, ok := s.exchangeFor(w, r)
	if !ok {
		return
	}
	override := queryOf(r).Get("outputIdScheme")
	sets := make([]any, 0, len(e.Source.Requests))
	for _, req := range e.Source.Requests {
		rows, ae := s.analyticsDataValues(m, sourceQuery(req, override), callOf(r).user)
		if ae != nil {
			ae.write(w, r)
			return
		}
		sets = append(sets, orderedMap{{"dataValues", anyList(rows)}})
	}
	writeBody(w, r, http.StatusOK, "", sets)
}

func anyList(rows []orderedMap) []any {
	out := make([]any, len(rows))
	for i, r := range rows {
		out[i] = r
	}
	return out
}

func (s *Server) handleSourceData(w http.ResponseWriter, r *http.Request) {
	m, e, ok := s.exchangeFor(w, r)
	if !ok {
		return
	}
	override := queryOf(r).Get("outputIdScheme")
	grids := make([]any, 0, len(e.Source.Requests))
	for _, req := range e.Source.Requests {
		aq, ae := s.parseAnalytics(m, sourceQuery(req, override), callOf(r).user)
		if ae != nil {
			ae.write(w, r)
			return
		}
		grids = append(grids, aq.grid(m, aq.aggregate(m, s.analyticsFacts(m))))
	}
	writeBody(w, r, http.StatusOK, "", grids)
}

// grid renders cells as an analytics grid (headers dx, pe, ou, value).
func (q *analyticsQuery) grid(m *Metadata, cells []analyticsValue) orderedMap {
	header := func(name, column, valueType, typ string, meta bool) orderedMap {
		return orderedMap{{"name", name}, {"column", column}, {"valueType", valueType}, {"type", typ},
			{"hidden", false}, {"meta", meta}}
	}
	deScheme := orScheme(q.outDE, q.outItem, q.out)
	opScheme := orScheme(q.outDE, q.out)
	piScheme := orScheme(q.outItem, q.out)
	ouScheme := orScheme(q.outOU, q.out)
	dxID := func(it dxItem) string {
		switch {
		case it.pi != nil:
			if v, ok := piIdent(it.pi, piScheme); ok {
				return v
			}
			return it.pi.ID
		case it.coc != "":
			return m.identOrUID(kindDataElement, opScheme, it.de.ID) + "." + m.identOrUID(kindCOC, opScheme, it.coc)
		}
		return m.identOrUID(kindDataElement, deScheme, it.de.ID)
	}
	items := orderedMap{}
	addItem := func(id, name string) {
		if _, dup := omGet(items, id); !dup {
			items = append(items, kv{id, orderedMap{{"name", name}}})
		}
	}
	var dxList, peList, ouList []any
	for _, it := range q.dx {
		id := dxID(it)
		name := ""
		if it.pi != nil {
			name = it.pi.Name
		} else {
			name = it.de.Name
		}
		addItem(id, name)
		dxList = append(dxList, id)
	}
	for _, p := range q.pe {
		addItem(p.ID(), p.ID())
		peList = append(peList, p.ID())
	}
	for _, ou := range q.ou {
		id := m.identOrUID(kindOrgUnit, ouScheme, ou)
		addItem(id, m.idx.ou[ou].Name)
		ouList = append(ouList, id)
	}
	rows := make([]any, 0, len(cells))
	for _, c := range cells {
		integer := c.item.de != nil && integerValueType(c.item.de.ValueType)
		rows = append(rows, []any{dxID(c.item), c.pe.ID(), m.identOrUID(kindOrgUnit, ouScheme, c.ou),
			formatAnalyticsValue(c.value, q.skipRounding, integer)})
	}
	return orderedMap{
		{"headers", []any{header("dx", "Data", "TEXT", "java.lang.String", true), header("pe", "Period", "TEXT", "java.lang.String", true),
			header("ou", "Organisation unit", "TEXT", "java.lang.String", true), header("value", "Value", "NUMBER", "java.lang.Double", false)}},
		{"metaData", orderedMap{{"items", items}, {"dimensions", orderedMap{{"dx", dxList}, {"pe", peList}, {"ou", ouList}, {"co", []any{}}}}}},
		{"rowContext", orderedMap{}},
		{"rows", rows},
		{"width", 4},
		{"height", len(rows)},
		{"headerWidth", 4},
	}
}

// exchangeResult is the outcome of one source request.
type exchangeResult struct {
	status  string
	count   importCount
	summary any // rendered ImportSummary
}

func errorResult(desc string) exchangeResult {
	return exchangeResult{status: "ERROR", summary: orderedMap{{"responseType", "ImportSummary"}, {"status", "ERROR"},
		{"description", desc}, {"importCount", orderedMap{{"imported", 0}, {"updated", 0}, {"ignored", 0}, {"deleted", 0}}},
		{"conflicts", []any{}}}}
}

func (s *Server) handleRunExchange(w http.ResponseWriter, r *http.Request) {
	m, e, ok := s.exchangeFor(w, r)
	if !ok {
		return
	}
	s.writeExchangeRun(w, r, s.runExchange(r.Context(), m, e, callOf(r)))
}

func (s *Server) handleRunInlineExchange(w http.ResponseWriter, r *http.Request) {
	if s.version.Minor < 39 {
		writeError(w, r, http.StatusNotFound, "Not found: "+r.URL.Path)
		return
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<24))
	var e AggregateDataExchange
	if err == nil {
		err = json.Unmarshal(raw, &e)
	}
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "Invalid aggregate data exchange: "+err.Error())
		return
	}
	s.writeExchangeRun(w, r, s.runExchange(r.Context(), s.metadataSnapshot(), &e, callOf(r)))
}

// runExchange runs every source request of e (§10.3).
func (s *Server) runExchange(ctx context.Context, m *Metadata, e *AggregateDataExchange, c *call) []exchangeResult {
	var out []exchangeResult
	for _, req := range e.Source.Requests {
		rows, ae := s.analyticsDataValues(m, sourceQuery(req, ""), c.user)
		if ae != nil {
			out = append(out, errorResult(ae.message))
			continue
		}
		body, err := marshalNoEscape(orderedMap{{"dataValues", anyList(rows)}})
		if err != nil {
			out = append(out, errorResult(err.Error()))
			continue
		}
		var res exchangeResult
		switch strings.ToUpper(e.Target.Type) {
		case "INTERNAL":
			res = s.importInternal(ctx, e.Target.Request, body, c)
		case "EXTERNAL":
			res = s.pushExternal(ctx, e.Target, body)
		default:
			res = errorResult("Target type is not supported: " + e.Target.Type)
		}
		s.logger.InfoContext(ctx, "aggregate data exchange", "exchange", e.ID, "request", req.Name, "values", len(rows),
			"status", res.status)
		out = append(out, res)
	}
	return out
}

// targetSkipAudit is the skipAudit a target request asks for: absent before
// 2.41; from 2.41.1 it defaults to true (§10.4).
func (s *Server) targetSkipAudit(tr *ExchangeTargetRequest) bool {
	if tr != nil && tr.SkipAudit != nil {
		return *tr.SkipAudit
	}
	v := s.version
	return v.Minor > 41 || (v.Minor == 41 && v.Patch >= 1)
}

func (s *Server) importInternal(ctx context.Context, tr *ExchangeTargetRequest, body []byte, c *call) exchangeResult {
	q := url.Values{}
	if tr != nil {
		for k, v := range map[string]string{"dataElementIdScheme": tr.DataElementIDScheme, "orgUnitIdScheme": tr.OrgUnitIDScheme,
			"categoryOptionComboIdScheme": tr.CategoryOptionComboIDScheme, "idScheme": tr.IDScheme} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if s.version.Minor >= 41 {
			if tr.ImportStrategy != "" {
				q.Set("importStrategy", tr.ImportStrategy)
			}
			if tr.DryRun != nil {
				q.Set("dryRun", strconv.FormatBool(*tr.DryRun))
			}
		}
	}
	if s.version.Minor >= 41 {
		q.Set("skipAudit", strconv.FormatBool(s.targetSkipAudit(tr)))
	}
	sum := s.runImport(ctx, importRequest{body: body, format: "json", opts: parseImportOptions(q), user: c.user, reqID: c.id})
	return exchangeResult{status: sum.status, count: sum.count, summary: sum.render(s.version)}
}

// pushExternal posts a data value set to an EXTERNAL target like DHIS2's
// Dhis2Client (§10.4).
func (s *Server) pushExternal(ctx context.Context, t ExchangeTarget, body []byte) exchangeResult {
	if t.API == nil || t.API.URL == "" {
		return errorResult("Target API must be specified when target type is EXTERNAL")
	}
	tr := t.Request
	if tr == nil {
		tr = &ExchangeTargetRequest{}
	}
	v := s.version
	q := url.Values{}
	schemes := []struct{ name, value string }{
		{"dataElementIdScheme", tr.DataElementIDScheme}, {"orgUnitIdScheme", tr.OrgUnitIDScheme},
		{"categoryOptionComboIdScheme", tr.CategoryOptionComboIDScheme},
	}
	if v.Minor < 43 {
		schemes = append(schemes, struct{ name, value string }{"idScheme", tr.IDScheme})
	}
	for _, sc := range schemes {
		value := sc.value
		if v.Minor >= 43 && value == "" {
			value = tr.IDScheme
		}
		if id, ok := parseIDScheme(value); ok && id.kind != schemeUID {
			q.Set(sc.name, id.String())
		}
	}
	strategy := "CREATE_AND_UPDATE"
	if st, ok := normaliseStrategy(tr.ImportStrategy); ok {
		strategy = st
	}
	dryRun := tr.DryRun != nil && *tr.DryRun
	skipAudit := s.targetSkipAudit(tr)
	switch {
	case v.Minor >= 43:
		q.Set("importStrategy", strategy)
		q.Set("skipAudit", strconv.FormatBool(skipAudit))
		q.Set("dryRun", strconv.FormatBool(dryRun))
	case v.Minor >= 41:
		if strategy != "CREATE_AND_UPDATE" {
			q.Set("importStrategy", strategy)
		}
		if skipAudit {
			q.Set("skipAudit", "true")
		}
		if dryRun {
			q.Set("dryRun", "true")
		}
	}
	target := strings.TrimRight(t.API.URL, "/") + "/api/dataValueSets"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errorResult(err.Error())
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	switch {
	case strings.TrimSpace(t.API.AccessToken) != "":
		req.Header.Set("Authorization", "ApiToken "+t.API.AccessToken)
	case t.API.Username != "" && t.API.Password != "":
		req.SetBasicAuth(t.API.Username, t.API.Password)
	default:
		return errorResult("DHIS 2 client authentication not specified")
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return errorResult(fmt.Sprintf("I/O error on POST request for %q: %v", target, err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return errorResult(err.Error())
	}
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusConflict:
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return errorResult(fmt.Sprintf("Data import to target instance failed with status: '%d %s'", resp.StatusCode,
			strings.ToUpper(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))))
	default:
		return errorResult(fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode)))
	}
	var wrapper struct {
		Response json.RawMessage `json:"response"`
	}
	if err := json.Unmarshal(raw, &wrapper); err != nil {
		return errorResult("Could not parse import response: " + err.Error())
	}
	chosen := json.RawMessage(raw)
	var probe struct {
		Status      string `json:"status"`
		ImportCount struct {
			Imported, Updated, Ignored, Deleted int
		} `json:"importCount"`
	}
	if len(wrapper.Response) > 0 && json.Unmarshal(wrapper.Response, &probe) == nil && probe.Status != "" {
		chosen = wrapper.Response
	} else if err := json.Unmarshal(raw, &probe); err != nil {
		return errorResult("Could not parse import response: " + err.Error())
	}
	ic := probe.ImportCount
	return exchangeResult{status: probe.Status, summary: chosen,
		count: importCount{imported: ic.Imported, updated: ic.Updated, ignored: ic.Ignored, deleted: ic.Deleted}}
}

// writeExchangeRun answers a run with ImportSummaries (§10.5).
func (s *Server) writeExchangeRun(w http.ResponseWriter, r *http.Request, results []exchangeResult) {
	status := "SUCCESS"
	var n importCount
	summaries := make([]any, 0, len(results))
	for _, res := range results {
		switch {
		case res.status == "ERROR":
			status = "ERROR"
		case res.status == "WARNING" && status != "ERROR":
			status = "WARNING"
		}
		n.imported += res.count.imported
		n.updated += res.count.updated
		n.deleted += res.count.deleted
		n.ignored += res.count.ignored
		summaries = append(summaries, res.summary)
	}
	body := orderedMap{{"responseType", "ImportSummaries"}, {"status", status}, {"imported", n.imported},
		{"updated", n.updated}, {"deleted", n.deleted}, {"ignored", n.ignored},
		{"total", n.imported + n.updated + n.deleted + n.ignored}, {"importSummaries", summaries}}
	v := s.version
	if (v.Minor == 39 && v.Patch < 6) || (v.Minor == 40 && v.Patch < 4) {
		writeBody(w, r, http.StatusOK, "importSummaries", body)
		return
	}
	switch status {
	case "SUCCESS":
		writeBody(w, r, http.StatusOK, "webMessage", webMessage(http.StatusOK, "OK", "Import was successful.", body))
	case "WARNING":
		writeBody(w, r, http.StatusConflict, "webMessage", webMessage(http.StatusConflict, "WARNING",
			"One or more conflicts encountered, please check import summary.", body))
	default:
		writeBody(w, r, http.StatusConflict, "webMessage", webMessage(http.StatusConflict, "ERROR",
			"An error occurred, please check import summary.", body))
	}
}
