package mapping

import (
	"fmt"

	"github.com/tally-hmis/tally/transform"
	"github.com/tally-hmis/tally/transform/period"
)

type periodKey struct {
	id string
	t  period.Type
}

type rolled struct {
	id, err, code string
}

// period returns the value's period in the target and, when it was rolled up, the source
// period it came from.
func (r *run) period(v *transform.DataValue, res *resolved) (pe, from string, ok bool) {
	if !r.p.set.Rollup {
		return v.Period, "", true
	}
	if res.ptype == 0 {
		r.refuse(v, "period", codePeriodType, "cannot roll up: %s", res.ptypeWhy)
		return "", "", false
	}
	key := periodKey{v.Period, res.ptype}
	ro, seen := r.periods[key]
	if !seen {
		ro = rollUp(v.Period, res.ptype)
		if r.periods == nil {
			r.periods = map[periodKey]rolled{}
		}
		r.periods[key] = ro
	}
	if ro.err != "" {
		r.refuse(v, "period", ro.code, "%s (target data set %s)", ro.err, dataSetLabel(res.ds))
		return "", "", false
	}
	if ro.id == v.Period {
		return v.Period, "", true
	}
	return ro.id, v.Period, true
}

func rollUp(id string, t period.Type) rolled {
	p, err := period.Parse(id)
	if err != nil {
		return rolled{err: err.Error(), code: codePeriod}
	}
	if p.Type() == t {
		return rolled{id: id}
	}
	up, ok := p.RollUp(t)
	if !ok {
		return rolled{err: fmt.Sprintf("a %s period does not roll up into %s", p.Type(), t), code: codePeriodType}
	}
	return rolled{id: up.ID()}
}

// inRelease refuses a value whose period the target's DHIS2 release cannot read (a
// WeeklyFriday week on 2.42, say), which DHIS2 would answer with "Period not valid". A
// period that does not parse is left to DHIS2; only its release is checked here.
func (r *run) inRelease(v *transform.DataValue, pe string) bool {
	if r.release == 0 || (pe == r.last.pe && pe != "") {
		return true
	}
	why, seen := r.releases[pe]
	if !seen {
		why = releaseLacks(pe, r.release, r.target)
		if r.releases == nil {
			r.releases = map[string]string{}
		}
		r.releases[pe] = why
	}
	if why == "" {
		r.last.pe = pe
		return true
	}
	r.refuse(v, "period", codePeriod, "%s", why)
	return false
}

// releaseLacks says why DHIS2 release rel (of target) has no period id, or "".
func releaseLacks(id string, rel int, target string) string {
	p, err := period.Parse(id)
	if err != nil {
		return ""
	}
	since := p.Type().Since()
	if since <= rel {
		return ""
	}
	return fmt.Sprintf("period %s is %s, a period type DHIS2 has from 2.%d on; target %q runs 2.%d", id, p.Type(), since, target, rel)
}
