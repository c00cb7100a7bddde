package txlog

// SetFollowLimit lowers the bound of the followed copy, so that a test can pass it with a few
// records instead of maxFollowed.
func SetFollowLimit(l *TxLog, n int) { l.cache.max = n }

// Followed is how many records the followed copy holds.
func Followed(l *TxLog) int {
	l.cache.mu.Lock()
	defer l.cache.mu.Unlock()
	return len(l.cache.byID)
}
