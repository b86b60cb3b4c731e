//go:build cgo

package libjpeg

/*
#cgo LDFLAGS: -ljpeg
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

// decoder is one decompression; cinfo comes first so that libjpeg's
// j_common_ptr can be cast back to it.
typedef struct {
	struct jpeg_decompress_struct cinfo;
	struct jpeg_error_mgr err;
	jmp_buf env;
	int finishing; // set while jpeg_finish_decompress runs
	int truncated; // the data ended before the last scanline
	char msg[JMSG_LENGTH_MAX];
} decoder;

// error_exit replaces libjpeg's exit(): the message is kept and control
// returns to the setjmp in the current call.
static void error_exit(j_common_ptr c) {
	decoder *d = (decoder *)c;
	(*c->err->format_message)(c, d->msg);
	longjmp(d->env, 1);
}

// emit_message ignores warnings, as PIL does, except the end of the data
// before the image is complete: PIL's decoder would wait for more bytes
// there and report "image file is truncated". A missing EOI marker after
// the last scanline is accepted, as PIL accepts it.
static void emit_message(j_common_ptr c, int level) {
	decoder *d = (decoder *)c;
	if (level >= 0) {
		return;
	}
	c->err->num_warnings++;
	if (c->err->msg_code == JWRN_JPEG_EOF && !d->finishing) {
		d->truncated = 1;
		longjmp(d->env, 1);
	}
}

static void output_message(j_common_ptr c) {}

static decoder *decoder_new(void) {
	decoder *d = calloc(1, sizeof(decoder));
	if (d == NULL) {
		return NULL;
	}
	d->cinfo.err = jpeg_std_error(&d->err);
	d->err.error_exit = error_exit;
	d->err.emit_message = emit_message;
	d->err.output_message = output_message;
	if (setjmp(d->env)) {
		free(d);
		return NULL;
	}
	jpeg_create_decompress(&d->cinfo);
	return d;
}

static void decoder_free(decoder *d) {
	jpeg_destroy_decompress(&d->cinfo);
	free(d);
}

// decoder_header reads the header of buf (which must stay valid until
// decoder_free) and reports the output size and number of components.
// scale_denom (1, 2, 4 or 8) shrinks the output in the DCT domain.
// It returns 0, or -1 with d->msg or d->truncated set.
static int decoder_header(decoder *d, const unsigned char *buf, unsigned long n,
                          int scale_denom, int *w, int *h, int *comps) {
	if (setjmp(d->env)) {
		return -1;
	}
	jpeg_mem_src(&d->cinfo, buf, n);
	jpeg_read_header(&d->cinfo, TRUE);
	*comps = d->cinfo.num_components;
	switch (d->cinfo.num_components) {
	case 1:
		d->cinfo.out_color_space = JCS_GRAYSCALE;
		break;
	case 3:
		d->cinfo.out_color_space = JCS_RGB;
		break;
	case 4:
		d->cinfo.out_color_space = JCS_CMYK;
		break;
	default:
		snprintf(d->msg, sizeof d->msg, "cannot handle %d-component images", d->cinfo.num_components);
		return -1;
	}
	if (scale_denom > 1) {
		d->cinfo.scale_num = 1;
		d->cinfo.scale_denom = scale_denom;
	}
	jpeg_calc_output_dimensions(&d->cinfo);
	*w = d->cinfo.output_width;
	*h = d->cinfo.output_height;
	return 0;
}

// muldiv255 is a*b/255 rounded, in PIL's integer form.
static inline int muldiv255(int a, int b) {
	int t = a * b + 128;
	return ((t >> 8) + t) >> 8;
}

// decoder_decode decodes into out, w*h*3 bytes of packed RGB.
static int decoder_decode(decoder *d, unsigned char *out) {
	if (setjmp(d->env)) {
		return -1;
	}
	struct jpeg_decompress_struct *c = &d->cinfo;
	jpeg_start_decompress(c);
	JDIMENSION w = c->output_width;
	size_t stride = (size_t)w * 3;
	JSAMPARRAY cmyk = NULL;
	if (c->out_color_components == 4) {
		cmyk = (*c->mem->alloc_sarray)((j_common_ptr)c, JPOOL_IMAGE, w * 4, 1);
	}
	while (c->output_scanline < c->output_height) {
		unsigned char *row = out + (size_t)c->output_scanline * stride;
		if (c->out_color_components == 3) {
			jpeg_read_scanlines(c, &row, 1);
		} else if (c->out_color_components == 1) {
			// Read gray into the start of the row, then spread it from
			// the end so that no value is overwritten before it is read.
			jpeg_read_scanlines(c, &row, 1);
			for (JDIMENSION x = w; x-- > 0;) {
				unsigned char v = row[x];
				row[3 * x] = v;
				row[3 * x + 1] = v;
				row[3 * x + 2] = v;
			}
		} else {
			jpeg_read_scanlines(c, cmyk, 1);
			// The stored values are Adobe-inverted: raw = 255 - ink.
			// PIL inverts them back, then R = (255-K) - C*(255-K)/255.
			const unsigned char *p = cmyk[0];
			for (JDIMENSION x = 0; x < w; x++, p += 4) {
				int nk = p[3];
				row[3 * x] = nk - muldiv255(255 - p[0], nk);
				row[3 * x + 1] = nk - muldiv255(255 - p[1], nk);
				row[3 * x + 2] = nk - muldiv255(255 - p[2], nk);
			}
		}
	}
	d->finishing = 1;
	jpeg_finish_decompress(c);
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// MaxPixels is the largest image (width × height) decoded; larger ones are
// refused before any pixel memory is allocated. It is PIL's limit for a
// decompression bomb (twice Image.MAX_IMAGE_PIXELS).
const MaxPixels = 2 * 89478485

// ErrTruncated is returned when the data ends before the image does.
var ErrTruncated = errors.New("image file is truncated")

// Header reads only the header: the image size and number of components.
func Header(b []byte) (w, h, components int, err error) {
	d, err := open(b, 1)
	if err != nil {
		return 0, 0, 0, err
	}
	defer d.close()
	return d.w, d.h, d.comps, nil
}

// DecodeRGB decodes the JPEG in b into packed 8-bit RGB, rows top to
// bottom, as PIL's Image.open(...).convert("RGB") would.
func DecodeRGB(b []byte) (w, h int, rgb []byte, err error) {
	return DecodeRGBScaled(b, 1)
}

// DecodeRGBScaled is DecodeRGB at 1/denom of the size (denom 1, 2, 4 or
// 8), scaled in the DCT domain: the output is ceil(w/denom) × ceil(h/denom).
// This is what PIL's draft mode asks libjpeg for, but with the accurate
// IDCT and fancy upsampling kept.
func DecodeRGBScaled(b []byte, denom int) (w, h int, rgb []byte, err error) {
	switch denom {
	case 1, 2, 4, 8:
	default:
		return 0, 0, nil, fmt.Errorf("libjpeg: scale 1/%d: want 1, 2, 4 or 8", denom)
	}
	d, err := open(b, denom)
	if err != nil {
		return 0, 0, nil, err
	}
	defer d.close()
	rgb = make([]byte, d.w*d.h*3)
	if C.decoder_decode(d.c, (*C.uchar)(unsafe.Pointer(&rgb[0]))) != 0 {
		return 0, 0, nil, d.err()
	}
	return d.w, d.h, rgb, nil
}

// decoder is a libjpeg decompression whose header has been read; the
// input stays pinned until close, as libjpeg keeps a pointer into it.
type decoder struct {
	c        *C.decoder
	pin      runtime.Pinner
	w, h     int
	comps    int
	released bool
}

func open(b []byte, denom int) (*decoder, error) {
	if len(b) == 0 {
		return nil, errors.New("libjpeg: empty file")
	}
	c := C.decoder_new()
	if c == nil {
		return nil, errors.New("libjpeg: cannot allocate a decoder")
	}
	d := &decoder{c: c}
	d.pin.Pin(&b[0])
	var w, h, comps C.int
	if C.decoder_header(c, (*C.uchar)(unsafe.Pointer(&b[0])), C.ulong(len(b)), C.int(denom), &w, &h, &comps) != 0 {
		err := d.err()
		d.close()
		return nil, err
	}
	d.w, d.h, d.comps = int(w), int(h), int(comps)
	if d.w <= 0 || d.h <= 0 {
		d.close()
		return nil, fmt.Errorf("libjpeg: empty image (%dx%d)", d.w, d.h)
	}
	if d.w*d.h > MaxPixels {
		d.close()
		return nil, fmt.Errorf("libjpeg: %dx%d is %d pixels, more than the %d accepted", d.w, d.h, d.w*d.h, MaxPixels)
	}
	return d, nil
}

// err turns the state libjpeg left after a failed call into an error.
func (d *decoder) err() error {
	if d.c.truncated != 0 {
		return ErrTruncated
	}
	return fmt.Errorf("libjpeg: %s", C.GoString(&d.c.msg[0]))
}

func (d *decoder) close() {
	if d.released {
		return
	}
	d.released = true
	C.decoder_free(d.c)
	d.pin.Unpin()
}
