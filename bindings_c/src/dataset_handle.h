// The C ABI's opaque pv_dataset: the counts and annotations a model is fitted to. Internal to
// the library; the model code reaches the AnnData through it.
#pragma once

#include "io/anndata.h"

struct pv_dataset {
  pv::io::AnnData data;  // layers "spliced" and "unspliced", same shape
};
