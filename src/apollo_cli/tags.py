"""Carry tags and cover art from an input file to its restored output (mutagen).

Read from ID3 (MP3, and AIFF/WAV files that carry an ID3 chunk), Vorbis comments
(FLAC, Ogg Vorbis/Opus/FLAC, including ``METADATA_BLOCK_PICTURE``), MP4 atoms (M4A/AAC)
and ASF (WMA); written as Vorbis comments plus PICTURE blocks to FLAC and as an ID3
chunk to WAV. The fields carried are the ones every player shows: title, artist, album,
album artist, track and disc (number and total), date, genre, comment, and every
embedded picture with its type, MIME type and description.

Nothing here raises because of a tag: a value that cannot be read or carried is
skipped and described in a warning (one line each), and the restore goes on. The one
exception is an I/O error while saving tags into the output file (a full disk, say),
which is an error of the output, not of a tag; it propagates as :class:`OSError`.
ReplayGain, encoder and other codec-specific tags are deliberately not carried: they
describe the lossy audio, not the restored one.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import mutagen

#: The fields carried, by their Vorbis-comment names (the canonical names here).
FIELDS = (
    "title",
    "artist",
    "album",
    "albumartist",
    "tracknumber",
    "tracktotal",
    "discnumber",
    "disctotal",
    "date",
    "genre",
    "comment",
)

#: A FLAC metadata block's length is a 24-bit number.
_FLAC_BLOCK_LIMIT = (1 << 24) - 1


@dataclass(frozen=True)
class Picture:
    """An embedded picture. ``type`` is the ID3/FLAC picture type (3: front cover)."""

    data: bytes
    mime: str = "image/jpeg"
    type: int = 3
    description: str = ""


@dataclass
class Tags:
    """The tags of one file, in a format-neutral form.

    ``fields`` maps names from :data:`FIELDS` to their values (a list: Vorbis comments,
    ID3 and MP4 all allow several artists or genres). ``warnings`` says what could not
    be read.
    """

    fields: dict[str, list[str]] = field(default_factory=dict)
    pictures: list[Picture] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.pictures)

    def add(self, name: str, values: Iterable[object]) -> None:
        """Append non-empty text values to a field (first source wins for single values)."""
        texts = [str(v).strip("\x00").strip() for v in values]
        texts = [t for t in texts if t]
        if texts:
            self.fields.setdefault(name, []).extend(t for t in texts if t not in self.fields.get(name, []))


# ---------------------------------------------------------------------------------- reading


def read_tags(path: str | os.PathLike[str]) -> Tags:
    """The tags and pictures of an audio file; never raises.

    A file whose tags cannot be parsed gives empty tags and a warning; a file without
    tags (or of a kind mutagen does not know) gives empty tags and no warning.
    """
    p = Path(path)
    result = Tags()
    try:
        audio = mutagen.File(p)
    except Exception as exc:  # noqa: BLE001 - mutagen raises many kinds on damaged files
        result.warnings.append(f"could not read the tags of {p.name} ({_describe(exc)}); restored without them")
        return result
    tags = getattr(audio, "tags", None) if audio is not None else None
    try:
        if tags is not None:
            _read_any(audio, tags, result)
        elif p.suffix.lower() in (".wav", ".wave", ".aif", ".aiff", ".aifc"):
            _read_riff_info(p, result)
    except Exception as exc:  # noqa: BLE001 - a tag layout we did not foresee: keep what was read
        result.warnings.append(f"could not read all tags of {p.name} ({_describe(exc)}); some were not carried")
    return result


def _read_any(audio: object, tags: object, result: Tags) -> None:
    from mutagen._vorbis import VComment
    from mutagen.asf import ASFTags
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    if isinstance(tags, ID3):
        _read_id3(tags, result)
    elif isinstance(tags, VComment):
        _read_vorbis(tags, result)
        for picture in getattr(audio, "pictures", []):  # FLAC PICTURE blocks
            result.pictures.append(_from_flac_picture(picture))
    elif isinstance(tags, MP4Tags):
        _read_mp4(tags, result)
    elif isinstance(tags, ASFTags):
        _read_asf(tags, result)


def _read_id3(tags: mutagen.id3.ID3, result: Tags) -> None:
    def texts(frame_id: str) -> list[str]:
        return [str(value) for frame in tags.getall(frame_id) for value in frame.text]

    result.add("title", texts("TIT2"))
    result.add("artist", texts("TPE1"))
    result.add("album", texts("TALB"))
    result.add("albumartist", texts("TPE2"))
    _add_pair(result, "track", texts("TRCK"))
    _add_pair(result, "disc", texts("TPOS"))
    result.add("date", texts("TDRC"))  # ID3v2.3 TYER/TDAT are upgraded to TDRC on load
    result.add("genre", [g for frame in tags.getall("TCON") for g in frame.genres])
    # Only comments without a description: iTunes and others keep machine data
    # (iTunNORM, iTunSMPB, ...) in described COMM frames.
    result.add("comment", [t for frame in tags.getall("COMM") if not frame.desc for t in frame.text])
    for frame in tags.getall("APIC"):
        mime = _normalise_mime(frame.mime, frame.data)
        if mime == "-->":
            result.warnings.append("a picture that is only a link (APIC '-->') was not carried")
            continue
        result.pictures.append(Picture(bytes(frame.data), mime, int(frame.type), str(frame.desc)))


_VORBIS_ALIASES = {
    "title": "title",
    "artist": "artist",
    "album": "album",
    "albumartist": "albumartist",
    "album artist": "albumartist",
    "album_artist": "albumartist",
    "tracknumber": "tracknumber",
    "tracktotal": "tracktotal",
    "totaltracks": "tracktotal",
    "discnumber": "discnumber",
    "disctotal": "disctotal",
    "totaldiscs": "disctotal",
    "date": "date",
    "year": "date",
    "genre": "genre",
    "comment": "comment",
    "description": "comment",
}


def _read_vorbis(comments: list[tuple[str, str]], result: Tags) -> None:
    from mutagen.flac import Picture as FlacPicture

    for key, value in comments:
        name = key.lower()
        if name in ("tracknumber", "discnumber"):
            _add_pair(result, name[:-6], [value])
        elif name in _VORBIS_ALIASES:
            result.add(_VORBIS_ALIASES[name], [value])
        elif name == "metadata_block_picture":
            try:
                result.pictures.append(_from_flac_picture(FlacPicture(base64.b64decode(value))))
            except Exception as exc:  # noqa: BLE001 - a tag never fails a restore
                result.warnings.append(f"a damaged METADATA_BLOCK_PICTURE was not carried ({_describe(exc)})")
    # The legacy, pre-standard cover comment.
    legacy = [v for k, v in comments if k.lower() == "coverart"]
    mimes = [v for k, v in comments if k.lower() == "coverartmime"]
    for index, value in enumerate(legacy):
        try:
            data = base64.b64decode(value)
        except Exception as exc:  # noqa: BLE001 - a tag never fails a restore
            result.warnings.append(f"a damaged COVERART comment was not carried ({_describe(exc)})")
            continue
        mime = mimes[index] if index < len(mimes) else ""
        result.pictures.append(Picture(data, _normalise_mime(mime, data), 3, ""))


def _read_mp4(tags: mutagen.mp4.MP4Tags, result: Tags) -> None:
    from mutagen.mp4 import MP4Cover

    for atom, name in (
        ("\xa9nam", "title"),
        ("\xa9ART", "artist"),
        ("\xa9alb", "album"),
        ("aART", "albumartist"),
        ("\xa9day", "date"),
        ("\xa9gen", "genre"),  # mutagen turns the numeric 'gnre' atom into this too
        ("\xa9cmt", "comment"),
    ):
        result.add(name, tags.get(atom, []))
    for atom, name in (("trkn", "track"), ("disk", "disc")):
        for number, total in tags.get(atom, [])[:1]:
            if number:
                result.add(f"{name}number", [number])
            if total:
                result.add(f"{name}total", [total])
    for cover in tags.get("covr", []):
        data = bytes(cover)
        fmt = getattr(cover, "imageformat", None)
        mime = {MP4Cover.FORMAT_JPEG: "image/jpeg", MP4Cover.FORMAT_PNG: "image/png"}.get(fmt, "")
        result.pictures.append(Picture(data, _normalise_mime(mime, data), 3, ""))


def _read_asf(tags: mutagen.asf.ASFTags, result: Tags) -> None:
    def values(name: str) -> list[str]:
        return [str(v) for v in tags.get(name, [])]

    result.add("title", values("Title"))
    result.add("artist", values("Author"))
    result.add("album", values("WM/AlbumTitle"))
    result.add("albumartist", values("WM/AlbumArtist"))
    _add_pair(result, "track", values("WM/TrackNumber"))
    _add_pair(result, "disc", values("WM/PartOfSet"))
    result.add("date", values("WM/Year"))
    result.add("genre", values("WM/Genre"))
    result.add("comment", values("Description"))
    for value in tags.get("WM/Picture", []):
        try:
            result.pictures.append(_parse_wm_picture(bytes(value.value)))
        except Exception as exc:  # noqa: BLE001 - a tag never fails a restore
            result.warnings.append(f"a damaged WM/Picture was not carried ({_describe(exc)})")


def _parse_wm_picture(blob: bytes) -> Picture:
    """ASF's WM/Picture: type byte, data length, UTF-16LE MIME and description (NUL-ended), data."""
    kind, size = struct.unpack_from("<bI", blob, 0)
    pos = 5
    strings = []
    for _ in range(2):
        end = pos
        while blob[end : end + 2] != b"\x00\x00":
            end += 2
            if end >= len(blob):
                raise ValueError("unterminated string")
        strings.append(blob[pos:end].decode("utf-16-le"))
        pos = end + 2
    data = blob[pos : pos + size]
    if len(data) != size:
        raise ValueError("picture data is cut short")
    return Picture(data, _normalise_mime(strings[0], data), int(kind), strings[1])


def _read_riff_info(path: Path, result: Tags) -> None:
    """RIFF INFO (WAV) and AIFF text chunks, through libsndfile."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            meta = f.copy_metadata()
    except Exception:  # noqa: BLE001
        return  # not readable by libsndfile: decoding will say so
    for key, name in (("title", "title"), ("artist", "artist"), ("album", "album"),
                      ("date", "date"), ("genre", "genre"), ("comment", "comment")):  # fmt: skip
        if key in meta:
            result.add(name, [meta[key]])
    if "tracknumber" in meta:
        _add_pair(result, "track", [meta["tracknumber"]])


def _add_pair(result: Tags, kind: str, values: list[str]) -> None:
    """``3/12`` -> tracknumber 3, tracktotal 12 (also for discs); non-numeric kept as is (vinyl 'A1')."""
    for value in values[:1]:
        number, _, total = str(value).partition("/")
        result.add(f"{kind}number", [number])
        result.add(f"{kind}total", [total])


def _from_flac_picture(picture: mutagen.flac.Picture) -> Picture:
    data = bytes(picture.data)
    return Picture(data, _normalise_mime(picture.mime, data), int(picture.type), str(picture.desc))


def _normalise_mime(mime: str, data: bytes) -> str:
    """A proper MIME type: ``JPG`` / ``image/jpg`` / '' -> ``image/jpeg``, sniffing the bytes if needed."""
    text = (mime or "").strip().lower()
    if text == "-->":
        return text
    if text and "/" not in text:
        text = f"image/{text}"
    text = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}.get(text, text)
    if text in ("", "image/", "application/octet-stream"):
        if data.startswith(b"\xff\xd8"):
            return "image/jpeg"
        if data.startswith(b"\x89PNG"):
            return "image/png"
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return "image/gif"
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return "image/webp"
        return "image/jpeg" if not text else text
    return text


# ---------------------------------------------------------------------------------- writing


def write_tags(path: str | os.PathLike[str], tags: Tags, fmt: str) -> list[str]:
    """Write ``tags`` into the FLAC or WAV file ``path``; returns warnings, one line each.

    Values that cannot be stored are skipped with a warning. An I/O error while saving
    (the file is then in an unknown state) raises :class:`OSError`.
    """
    if not tags:
        return []
    warnings: list[str] = []
    fields = {name: [v for v in values if _is_text(v, name, warnings)] for name, values in tags.fields.items()}
    fields = {name: values for name, values in fields.items() if values}
    try:
        if fmt == "FLAC":
            saved = _write_flac(Path(path), fields, tags.pictures, warnings)
        elif fmt == "WAV":
            saved = _write_wav(Path(path), fields, tags.pictures, warnings)
        else:
            return [f"tags cannot be written to {fmt} files; none were carried"]
        saved()
    except Exception as exc:  # a tag never fails a restore; I/O errors are re-raised
        # mutagen wraps I/O errors in its own types, with the OSError as argument and context.
        causes = [exc, *exc.args[:1], exc.__context__, exc.__cause__]
        cause = next((c for c in causes if isinstance(c, OSError)), None)
        if cause is not None:
            raise OSError(cause.errno, f"cannot save tags: {cause.strerror or cause}") from exc
        warnings.append(f"tags were not carried ({_describe(exc)})")
    return warnings


def _write_flac(path: Path, fields: dict[str, list[str]], pictures: list[Picture], warnings: list[str]):  # type: ignore[no-untyped-def]
    from mutagen.flac import FLAC
    from mutagen.flac import Picture as FlacPicture

    audio = FLAC(path)
    if audio.tags is None:
        audio.add_tags()
    for name, values in fields.items():
        audio.tags[name.upper()] = values
    audio.clear_pictures()
    for picture in pictures:
        block = FlacPicture()
        block.data, block.mime, block.type, block.desc = picture.data, picture.mime, picture.type, picture.description
        if len(block.write()) > _FLAC_BLOCK_LIMIT:
            warnings.append(
                f"a {len(picture.data) / 2**20:.1f} MiB picture is too large for FLAC (16 MiB at most); not carried"
            )
            continue
        audio.add_picture(block)
    return audio.save


def _write_wav(path: Path, fields: dict[str, list[str]], pictures: list[Picture], warnings: list[str]):  # type: ignore[no-untyped-def]
    from mutagen import id3
    from mutagen.wave import WAVE

    audio = WAVE(path)
    if audio.tags is None:
        audio.add_tags()
    tags = audio.tags
    simple = {"title": id3.TIT2, "artist": id3.TPE1, "album": id3.TALB, "albumartist": id3.TPE2,
              "date": id3.TDRC, "genre": id3.TCON}  # fmt: skip
    for name, frame in simple.items():
        if name in fields:
            tags.add(frame(encoding=id3.Encoding.UTF8, text=fields[name]))
    for kind, frame in (("track", id3.TRCK), ("disc", id3.TPOS)):
        number = fields.get(f"{kind}number", [""])[0]
        total = fields.get(f"{kind}total", [""])[0]
        if number:
            tags.add(frame(encoding=id3.Encoding.UTF8, text=[f"{number}/{total}" if total else number]))
        elif total:
            warnings.append(f"a {kind} total without a {kind} number cannot be stored in ID3; not carried")
    if "comment" in fields:
        tags.add(id3.COMM(encoding=id3.Encoding.UTF8, lang="eng", desc="", text=fields["comment"]))
    seen: set[tuple[int, str]] = set()
    for picture in pictures:
        # ID3 identifies an APIC frame by its description: give duplicates distinct ones.
        desc = picture.description
        while (picture.type, desc) in seen or any(f.desc == desc for f in tags.getall("APIC")):
            desc += " "
        seen.add((picture.type, desc))
        tags.add(id3.APIC(encoding=id3.Encoding.UTF8, mime=picture.mime, type=picture.type, desc=desc,
                          data=picture.data))  # fmt: skip
    # ID3v2.3: what most WAV-reading software (Windows, DAWs, taggers) understands.
    return lambda: audio.save(v2_version=3)


def finalizer(tags: Tags, fmt: str, frames: int, warnings: list[str]) -> Callable[[Path], None]:
    """A ``finalize`` hook for :func:`apollo_cli.audio.write_audio` that adds ``tags``.

    It writes the tags into the finished temporary file, appends their warnings to
    ``warnings``, and then checks that the file still reads as ``frames`` frames of
    audio, so a tagging mishap can never leave a damaged output behind (the write
    fails instead, and the temporary file is removed).
    """

    def finalize(path: Path) -> None:
        if tags:
            warnings.extend(write_tags(path, tags, fmt))
        # Every output says it is apollo's, so a later run can tell it from an original.
        _write_provenance(path, fmt)
        import soundfile as sf

        from .errors import OutputError

        try:
            ok = sf.info(str(path)).frames == frames
        except Exception:  # noqa: BLE001 - unreadable is exactly what we check for
            ok = False
        if not ok:
            raise OutputError(
                "adding tags damaged the output file (a bug, please report it); nothing was written"
            )

    return finalize


def _is_text(value: str, name: str, warnings: list[str]) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        warnings.append(f"the {name} tag holds text that is not valid Unicode; not carried")
        return False
    return True


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


__all__ = ["FIELDS", "Picture", "Tags", "finalizer", "read_tags", "write_tags"]


# ------------------------------------------------------------------------------- provenance

#: The tag that marks a file as written by apollo-cli: a Vorbis comment in FLAC, an ID3
#: ``TXXX`` frame with this description in WAV. Its value is ``apollo-cli <version>``.
PROVENANCE_KEY = "APOLLO_RESTORED"


def provenance_value() -> str:
    """The value of the provenance tag this version writes."""
    from . import __version__

    return f"apollo-cli {__version__}"


def _write_provenance(path: Path, fmt: str) -> None:
    """Mark ``path`` (FLAC or WAV) as apollo-cli's output; I/O errors raise :class:`OSError`."""
    try:
        if fmt == "FLAC":
            from mutagen.flac import FLAC

            audio = FLAC(path)
            if audio.tags is None:
                audio.add_tags()
            audio.tags[PROVENANCE_KEY] = [provenance_value()]
            audio.save()
        elif fmt == "WAV":
            from mutagen import id3
            from mutagen.wave import WAVE

            audio = WAVE(path)
            if audio.tags is None:
                audio.add_tags()
            audio.tags.setall(f"TXXX:{PROVENANCE_KEY}", [
                id3.TXXX(encoding=id3.Encoding.UTF8, desc=PROVENANCE_KEY, text=[provenance_value()])
            ])  # fmt: skip
            audio.save(v2_version=3)
    except Exception as exc:  # as write_tags: only I/O errors are errors of the output
        causes = [exc, *exc.args[:1], exc.__context__, exc.__cause__]
        cause = next((c for c in causes if isinstance(c, OSError)), None)
        if cause is not None:
            raise OSError(cause.errno, f"cannot save tags: {cause.strerror or cause}") from exc
        # Otherwise the output simply has no marker: the safe side, as an unmarked file
        # is never taken for apollo's own (and so never replaced where that matters).


def has_provenance(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` carries apollo-cli's provenance tag (any version); never raises."""
    try:
        audio = mutagen.File(Path(path))
        found = getattr(audio, "tags", None) if audio is not None else None
        if found is None:
            return False
        from mutagen._vorbis import VComment
        from mutagen.id3 import ID3

        if isinstance(found, VComment):
            values = found.get(PROVENANCE_KEY, [])
        elif isinstance(found, ID3):
            values = [str(t) for frame in found.getall(f"TXXX:{PROVENANCE_KEY}") for t in frame.text]
        else:
            return False
        return any(str(v).startswith("apollo-cli") for v in values)
    except Exception:  # noqa: BLE001 - unreadable or damaged: not provably ours
        return False


__all__ += ["PROVENANCE_KEY", "has_provenance", "provenance_value"]
