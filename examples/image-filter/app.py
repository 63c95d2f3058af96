"""An image in, a processed image out: resize, then Gaussian blur, with Pillow (as cog's own examples do).

The answer is a PNG written the same way every time, so every target returns the same bytes for the same input.
Clients send the image as an https:// URL, a data: URI or an upload; the client gets a data: URI back unless the
deployment uploads outputs.
"""

import io
from typing import Annotated

from pydantic import Field

import gpuserve

image = gpuserve.Image(python="3.11").pip_install("pillow==13.0.0")

FORMATS = ("PNG", "JPEG", "WEBP")
MAX_PIXELS = 40_000_000  # a small compressed file can still decode to gigabytes; refuse it before decoding
ImageInput = Annotated[
    gpuserve.File,
    gpuserve.FileLimits(max_bytes=16 * 1024 * 1024, content_types=("image/png", "image/jpeg", "image/webp")),
    Field(
        description="The image to process: PNG, JPEG or WebP, at most 16 MiB",
        examples=[  # one orange pixel: what /docs and RunPod's test_input.json send
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP438AAAAQBAYDFKhhdAAAAAElFTkSuQmCC"
        ],
    ),
]


@gpuserve.model(
    name="image-filter",
    image=image,
    keep_warm=0,
    max_containers=2,
    concurrency=4,
    timeout=60,
    limits=gpuserve.Limits(max_body_bytes=24 * 1024 * 1024),  # a data: URI is a third larger than its file
)
class ImageFilter:
    def setup(self) -> None:
        from PIL import Image

        Image.init()  # register every decoder now, not in the first request

    def predict(
        self,
        image: ImageInput,
        blur: Annotated[float, Field(ge=0, le=50, description="Gaussian blur radius in pixels; 0 keeps it sharp")] = 2,
        width: Annotated[
            int | None, Field(ge=1, le=4096, description="Resize to this width first, keeping the aspect ratio")
        ] = None,
    ) -> gpuserve.File:
        from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

        try:
            opened = Image.open(image, formats=FORMATS)  # only these decoders, whatever the client said it sent
        except UnidentifiedImageError:
            raise ValueError("image: not a PNG, JPEG or WebP image Pillow can read; send one of those") from None
        with opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ValueError(
                    f"image: {opened.width}x{opened.height} is more than {MAX_PIXELS} pixels; send a smaller image"
                )
            picture = ImageOps.exif_transpose(opened)  # the way a camera held it, as viewers show it
            picture = picture.convert("RGBA" if picture.has_transparency_data else "RGB")
        if width is not None and width != picture.width:
            height = max(1, round(picture.height * width / picture.width))
            picture = picture.resize((width, height), Image.Resampling.LANCZOS)
        if blur > 0:
            picture = picture.filter(ImageFilter.GaussianBlur(blur))
        out = io.BytesIO()
        picture.save(out, format="PNG")  # no timestamps or other varying chunks: the same pixels give the same bytes
        return gpuserve.File.from_bytes(out.getvalue(), content_type="image/png")
