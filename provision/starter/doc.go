// Package starter writes the commented starter inventory of `kprep init`
// for a set of machines: a running Vagrant lab (`vagrant ssh-config`, each
// machine's private address read from the machine itself), running
// multipass instances (`multipass list --format json`), or user@host[:port]
// lines. The inventory it writes passes validation as written; Render
// checks that before handing it out.
package starter
