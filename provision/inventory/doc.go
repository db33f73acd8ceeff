// Package inventory reads, defaults and validates cluster.yaml, the file that
// says which hosts kprep works on and what it makes of them.
//
// Load reads a file strictly: an unknown field, a value of the wrong type or
// a semantic mistake (duplicate host, overlapping subnets, unset password
// variable...) is an error placed at file:line:column with its field path,
// and every problem in the file is reported at once as an ErrorList.
// Defaults are filled in one place (ApplyDefaults), after decoding and
// before validation, so every other package sees complete values: each
// Host's Connection is the cluster's ssh block merged with the host's own.
//
// Top-level keys starting with "x-" are ignored, as in Compose files: they
// are where a file keeps YAML anchors (&ssh) that hosts then merge (<<: *ssh).
//
// A Cluster built in code goes through ApplyDefaults and Validate the same
// way. Nothing here touches a host; the checks read only the local file
// system and environment, through Options so tests can replace them.
package inventory
