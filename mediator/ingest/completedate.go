package ingest

import (
	"strings"
	"time"

	"github.com/tally-hmis/tally/adapters/dvs"
	"github.com/tally-hmis/tally/config"
	"github.com/tally-hmis/tally/transform"
)

// A payload's completeDate registers its data set complete at the target, once the values
// it completes are delivered (spec dhis2.md §1.4, §8; mediator/delivery registers it).
//
// At ingest the date is read as DHIS2 reads a data value set's header completeDate
// (DefaultDataValueSetService.getCompletionDate/handleComplete): "true" is today, "false"
// or empty is no completion, a date in the future is today, anything else is the conflict
// "Complete date not valid"; a header without a dataSet completes nothing; and a header
// without an org unit, or without a period, is the conflict {"object":"OrganisationUnit"
// (or "Period"),"value":"Must be provided to complete data set"} and completes nothing.
// Those conflicts are in the answer and the transaction record. An ADX group's completeDate
// completes its dataSet for its period and org unit the same way (the group always has
// both). A source's complete_date chooses: dhis2 (the above), per_org_unit (a CHT export,
// whose header names the period but not the org units: every period and org unit its
// values name), or ignore.

// completionReader normalises the completeDate of a payload for a source, and collects the
// conflicts DHIS2 reports about it.
type completionReader struct {
	mode  string // config.Source.CompleteDateMode
	today time.Time
	notes []transform.ImportConflict
	// any is set once a group keeps a completion.
	any bool
}

func newCompletionReader(src *config.Source, received time.Time) *completionReader {
	return &completionReader{mode: src.CompleteDateMode(), today: received.UTC()}
}

// header checks a data value set's header (dvs.Options.OnHeader) and leaves in it the date
// to register, or none.
func (cr *completionReader) header(h *dvs.Header) {
	h.CompleteDate = cr.date(h.CompleteDate, h.DataSet)
	if h.CompleteDate == "" || cr.mode != "dhis2" {
		return
	}
	switch {
	case strings.TrimSpace(h.OrgUnit) == "":
		cr.notes = append(cr.notes, transform.ImportConflict{Object: "OrganisationUnit", Value: "Must be provided to complete data set"})
		h.CompleteDate = ""
	case strings.TrimSpace(h.Period) == "":
		cr.notes = append(cr.notes, transform.ImportConflict{Object: "Period", Value: "Must be provided to complete data set"})
		h.CompleteDate = ""
	}
}

// date reads a completeDate: the date to register (yyyy-MM-dd), or "".
func (cr *completionReader) date(cd, dataSet string) string {
	cd = strings.TrimSpace(cd)
	if cr.mode == "ignore" || cd == "" || strings.EqualFold(cd, "false") || dataSet == "" {
		return ""
	}
	today := cr.today.Format(time.DateOnly)
	if strings.EqualFold(cd, "true") {
		return today
	}
	d, err := time.Parse(time.DateOnly, cd[:min(len(cd), 10)])
	if err != nil {
		cr.notes = append(cr.notes, transform.ImportConflict{Object: cd, Value: "Complete date not valid"})
		return ""
	}
	if s := d.Format(time.DateOnly); s < today {
		return s
	}
	return today
}

// completing is the sink that applies the reader to every group (an ADX group's date, and
// a data value set's once its header was checked).
type completing struct {
	transform.Sink
	cr *completionReader
}

func (c completing) Group(g transform.Group) error {
	g.CompleteDate = c.cr.date(g.CompleteDate, g.DataSet)
	if g.CompleteDate != "" {
		c.cr.any = true
	}
	return c.Sink.Group(g)
}

// Reject passes a parser's own findings on, as deleting does.
func (c completing) Reject(e *transform.InputError, at transform.Locator) error {
	if r, ok := c.Sink.(transform.Rejecter); ok {
		return r.Reject(e, at)
	}
	return e
}
