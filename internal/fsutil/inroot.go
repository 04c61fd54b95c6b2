package fsutil

import (
	"os"
	"path/filepath"
	"strings"
)

// maxLinks bounds the symbolic links InRoot follows, as the kernel's 40.
const maxLinks = 40

// InRoot returns where the absolute path p of a host whose root filesystem is
// mounted at root lies under root, following symbolic links as that host
// would: an absolute link target starts again at root (the host's /var/run →
// /run is root/run, not the caller's /run) and ".." never climbs above root.
// Components that do not exist, or a chain of more than 40 links, are kept as
// written. With root "" or "/" it returns p cleaned.
func InRoot(root, p string) string {
	if root == "" || root == "/" {
		return filepath.Join("/", p)
	}
	root = filepath.Clean(root)
	todo := strings.Split(p, "/")
	var done []string // components resolved so far, under root
	links := 0
	under := func(parts ...string) string { return filepath.Join(append([]string{root}, parts...)...) }
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		target, err := os.Readlink(under(append(done, c)...))
		if err != nil || links >= maxLinks { // not a link, missing, or a loop
			done = append(done, c)
			continue
		}
		links++
		if filepath.IsAbs(target) {
			done = done[:0]
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return under(done...)
}
