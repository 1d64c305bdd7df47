// Package imageview analyses what an image's layers hold, from the store's
// snapshots (never extracting a blob): per layer the entries it adds,
// changes and removes and their content bytes; for the image the wasted
// bytes and the efficiency score; two images side by side; the CI rules
// of dive; and an HTML report. `kiln layers` and `kiln dive` show it.
//
// Definitions, as dive's:
//
//   - A layer's size is its content bytes: the apparent size of everything
//     in its snapshot but directories, a hard-linked inode once; the size
//     `kiln history` and `docker history` show.
//   - A file is wasted when a later layer replaces or deletes it. Each
//     earlier copy counts once (dive counts the surviving copy too,
//     wagoodman/dive#684; this does not).
//   - Efficiency is 1 − wasted/total, total being the sum of the layers'
//     sizes.
//   - User wasted percent is wasted/user size, the user size being that of
//     every layer but the first (the base).
package imageview
