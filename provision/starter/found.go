package starter

// Found is what a source of machines yielded: the machines for the
// inventory and what the inventory should say about them.
type Found struct {
	Machines []Machine
	// Source says where the machines came from, for the file's header.
	Source string
	// HostKeyPolicy overrides the inventory's default (accept-new) when the
	// source's own SSH setup does: "insecure" for Vagrant, whose machines
	// get new host keys at every `vagrant up` on the same forwarded port.
	HostKeyPolicy string
	// HostKeyNote says why, next to the setting.
	HostKeyNote string
	// Skipped lists machines left out and why ("mp3: Stopped"); the caller
	// reports them and the file's header lists them.
	Skipped []string
}
