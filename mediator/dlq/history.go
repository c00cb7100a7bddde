package dlq

import (
	"encoding/base64"
	"encoding/json"
)

// maxHistory bounds the failures a replayed batch carries.
const maxHistory = 20

// encodeHistory is the Tally-History header of a replay: the latest failures.
func encodeHistory(h []Failure) string {
	if len(h) > maxHistory {
		h = h[len(h)-maxHistory:]
	}
	data, _ := json.Marshal(h)
	return base64.RawURLEncoding.EncodeToString(data)
}

// decodeHistory reads a Tally-History header; one that does not read is no history.
func decodeHistory(v string) []Failure {
	data, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return nil
	}
	var h []Failure
	if json.Unmarshal(data, &h) != nil {
		return nil
	}
	return h
}
