// Package pipeline is what every stage of Tally's consume path shares, and the first stage
// itself: the consume chain that settles each message (acknowledge, return with a delay,
// dead-letter), the retry policy, the consumer runner (workers admitted by a gate), the
// shapes of the messages on TALLY_INGEST and TALLY_DELIVER with their headers, and the
// mapper stage with the mapping engine in force (the targets' metadata, reloads, the
// roll-up store).
//
// It must not serve HTTP, store dead letters itself (it hands them to the DeadLetters a
// caller gives it), or talk to a DHIS2 target beyond reading its metadata and release.
package pipeline
