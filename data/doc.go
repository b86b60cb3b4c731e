// Package data reads image datasets and feeds them to training in batches.
//
// Datasets yield raw decoded 8-bit RGB (Sample) rather than float tensors:
// the augmentation decides crops, sizes and normalisation, so the dataset
// stays independent of it and costs 3 bytes a pixel in memory.
//
// Sources: image folders (a directory or a .tar/.tar.gz archive of
// class/image.jpg), the CIFAR-10/100 binary archives (with a checksummed,
// cached download), MNIST-style IDX files and STL-10 binaries.
//
// Images (JPEG, PNG, GIF, BMP, TIFF, WebP) decode to the pixels PIL's
// Image.open(f).convert("RGB") gives, what torchvision's ImageFolder sees:
// JPEGs through libjpeg-turbo with PIL's settings in cgo builds (exactly
// equal; without cgo, Go's decoder, within a few levels). As in PIL, EXIF
// orientation is not applied: pixels are used as stored.
//
// The Loader batches a Dataset with worker goroutines. All randomness comes
// from tensor.NewRNG keyed by (seed, epoch, index), and every sample is
// written to a fixed slot of its batch, so batches are identical whatever
// the number of workers or their timing.
package data
