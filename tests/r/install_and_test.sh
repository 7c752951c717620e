#!/bin/sh
# Installs the R package bindings_c/r/pvengine the way a user does (R CMD INSTALL) into a library
# under WORK_DIR, then runs the R binding test against the installed package.
#
# usage: install_and_test.sh PACKAGE_DIR INCLUDE_DIR LIBPVENGINE_DIR WORK_DIR TEST_SCRIPT
# Exits 77 (skipped) when R or make is missing.
set -eu
package_dir=$1 include_dir=$2 lib_dir=$3 work_dir=$4 test_script=$5

if ! command -v R >/dev/null 2>&1; then
  echo "R is not installed: skipping the R package test"
  exit 77
fi
if ! command -v make >/dev/null 2>&1; then
  echo "make is not installed (R CMD INSTALL needs it; Debian: r-base-dev or make): skipping the R package test"
  exit 77
fi

# R CMD INSTALL builds a package folder in place, so build a copy, never the source tree.
rm -rf "$work_dir"
mkdir -p "$work_dir/source" "$work_dir/library"
cp -R "$package_dir" "$work_dir/source/pvengine"
rm -f "$work_dir"/source/pvengine/src/*.o "$work_dir"/source/pvengine/src/*.so

PVENGINE_INCLUDE=$include_dir PVENGINE_LIBDIR=$lib_dir \
  R CMD INSTALL --no-docs --no-html --library="$work_dir/library" "$work_dir/source/pvengine"

exec Rscript --vanilla "$test_script" --library="$work_dir/library"
