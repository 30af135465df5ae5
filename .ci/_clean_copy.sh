# Sourced by the .ci scripts (not run on its own).
# clean_copy REPO DEST: a clean copy of the source tree REPO in the new folder DEST, the
# tracked and untracked files but not what git ignores (build/, compiled modules), so a
# build there never reuses what an earlier build left behind.
clean_copy() {
    local repo=$1 dest=$2
    mkdir "$dest"
    if git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$repo" ls-files -z --cached --others --exclude-standard |
            tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$dest"
    else
        cp -a "$repo/." "$dest"
        rm -rf "$dest/build" "$dest"/src/cymlp/*.so
    fi
}
