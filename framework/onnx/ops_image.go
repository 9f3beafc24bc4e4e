package onnx

import (
	"bytes"
	"fmt"
	"image"
	_ "image/jpeg" // decoders registered for ImageDecoder
	_ "image/png"
	"strconv"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
)

// ImageDecoder decodes an encoded image on the host (PNG, JPEG, BMP, TIFF, binary PNM) into
// an [H, W, C] uint8 tensor in RGB, BGR or grayscale.

func init() {
	ops["ImageDecoder"] = func(c *call, in []*val) ([]*val, error) {
		h, err := in[0].hostTensor()
		if err != nil {
			return nil, err
		}
		img, err := decodeImage(h.Raw)
		if err != nil {
			return nil, err
		}
		b := img.Bounds()
		hh, ww := b.Dy(), b.Dx()
		format := c.str("pixel_format", "RGB")
		chn := 3
		if format == "Grayscale" {
			chn = 1
		}
		out := make([]uint8, 0, hh*ww*chn)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bl, _ := img.At(x, y).RGBA()
				r8, g8, b8 := uint32(r>>8), uint32(g>>8), uint32(bl>>8)
				switch format {
				case "BGR":
					out = append(out, uint8(b8), uint8(g8), uint8(r8))
				case "Grayscale": // ITU-R 601-2 luma, rounded as PIL does
					out = append(out, uint8((r8*19595+g8*38470+b8*7471+0x8000)>>16))
				default:
					out = append(out, uint8(r8), uint8(g8), uint8(b8))
				}
			}
		}
		return one(tv(c.slice(out, hh, ww, chn), Uint8))
	}
}

func decodeImage(b []byte) (image.Image, error) {
	if len(b) > 2 && b[0] == 'P' && (b[1] == '5' || b[1] == '6') {
		return decodePNM(b)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode image: %w", err)
	}
	return img, nil
}

// decodePNM reads binary PGM (P5) and PPM (P6) with 8-bit samples.
func decodePNM(b []byte) (image.Image, error) {
	var fields []int
	i := 2
	for len(fields) < 3 {
		for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
			i++
		}
		if i < len(b) && b[i] == '#' {
			for i < len(b) && b[i] != '\n' {
				i++
			}
			continue
		}
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		v, err := strconv.Atoi(string(b[i:j]))
		if err != nil {
			return nil, fmt.Errorf("pnm header: %w", err)
		}
		fields = append(fields, v)
		i = j
	}
	i++ // one whitespace byte ends the header
	w, h, maxv := fields[0], fields[1], fields[2]
	if maxv > 255 || w <= 0 || h <= 0 || w*h > 1<<28 {
		return nil, fmt.Errorf("pnm: unsupported size %dx%d or depth %d", w, h, maxv)
	}
	chn := 1
	if b[1] == '6' {
		chn = 3
	}
	if len(b)-i < w*h*chn {
		return nil, fmt.Errorf("pnm: %d bytes of pixels, want %d", len(b)-i, w*h*chn)
	}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := 0; p < w*h; p++ {
		px := b[i+p*chn : i+p*chn+chn]
		r, g, bl := px[0], px[0], px[0]
		if chn == 3 {
			g, bl = px[1], px[2]
		}
		copy(img.Pix[4*p:], []byte{r, g, bl, 255})
	}
	return img, nil
}
