// The C ABI's opaque pv_dataset: the counts and annotations a model is fitted to. Internal to
// the library; the model code reaches the AnnData through it.
#pragma once

#include <memory>

#include "io/anndata.h"

// Shared so that a model built on a dataset keeps it alive after pv_dataset_free.
struct pv_dataset {
  std::shared_ptr<pv::io::AnnData> data = std::make_shared<pv::io::AnnData>();  // layers "spliced" and "unspliced", same shape
};
