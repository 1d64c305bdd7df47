package layer

// Usage is what a tree takes. Size is the apparent size of everything but
// directories, what docker reports for a layer (`docker history`, `docker
// images`) and for a container's writable layer (SizeRw); Disk is the space
// its blocks occupy, directories included, as du(1) counts it. A
// hard-linked inode counts once in both.
type Usage struct {
	Size, Disk int64
}
