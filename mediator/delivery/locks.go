package delivery

import (
	"fmt"
	"slices"

	"github.com/tally-hmis/tally/mediator/txlog"
	"github.com/tally-hmis/tally/transform"
)

// A value refused because its period is locked or closed for data entry is not wrong: it
// is early or late, and the same value is taken once the period opens (or an approval is
// withdrawn, or someone with the authority to edit expired periods replays it). Such values
// become dead letters of their own reason, locked, apart from the values a target rejects
// for what they are: not retried, replayable once the period is open, counted in
// tally_delivery_values_total{outcome="locked"}, and shown by a preview.
//
// The codes (spec dhis2.md §1.5, §1.6; dhis2-core ErrorCode, DataValueSetImportValidator):
// E7640 the data set has expired for the period (expiryDays), E7641 the period is after the
// latest open future period, E7642 the data is approved, E7643 the period is not open for
// the data set (data input periods), E7644 no data set of the element is open for the
// period; in the 2.43 pipeline E8030–E8033 ("untimely").

var lockCodes = []string{"E7640", "E7641", "E7642", "E7643", "E7644", "E8030", "E8031", "E8032", "E8033"}

func isLockCode(code string) bool { return slices.Contains(lockCodes, code) }

// lockedIndexes are the payload indexes the lock conflicts of a target's answer name.
func lockedIndexes(cs []txlog.Conflict) map[int]bool {
	out := map[int]bool{}
	for _, c := range cs {
		if isLockCode(c.ErrorCode) {
			for _, i := range c.Indexes {
				out[i] = true
			}
		}
	}
	return out
}

// allLocks reports whether conflicts name only locked or closed periods.
func allLocks(cs []txlog.Conflict) bool {
	return len(cs) > 0 && !slices.ContainsFunc(cs, func(c txlog.Conflict) bool { return !isLockCode(c.ErrorCode) })
}

// splitRejected parts the values a target rejected (positions in b) into those refused
// for a locked or closed period and the others.
func splitRejected(b *transform.Batch, rejected []int, cs []txlog.Conflict) (locked, other []int) {
	lockedAt := lockedIndexes(cs)
	for _, i := range rejected {
		if lockedAt[b.Values[i].Index] {
			locked = append(locked, i)
		} else {
			other = append(other, i)
		}
	}
	return locked, other
}

// lockedError says what a locked dead letter holds.
func lockedError(target string, n, of int) error {
	return fmt.Errorf("%s refused %d of %d values for a locked or closed period; replay them once it is open", target, n, of)
}
