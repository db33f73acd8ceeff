// Package images says which images a node of the inventory will pull, and
// reads what a registry answers about them: an image index's platforms, or
// a single image's platform from its config. It is pure (inventory in,
// image list out; bytes in, platforms out), so the kube/images step can
// ask the registry from the host in its probe and judge in its Diff.
package images
