"""Carry tags and cover art from an input file to its restored output (mutagen).

Read from ID3 (MP3, and AIFF/WAV files that carry an ID3 chunk), Vorbis comments
(FLAC, Ogg Vorbis/Opus/FLAC, including ``METADATA_BLOCK_PICTURE``), MP4 atoms (M4A/AAC),
ASF (WMA), RIFF INFO, and Matroska/WebM tags and attached pictures (through ffprobe and
ffmpeg, :mod:`apollo_cli.ffprobe`, when they are installed); written as Vorbis comments
plus PICTURE blocks to FLAC and as an ID3v2.3 chunk to WAV. The file's kind is judged
by its content, not its name.

**Fields.** Tags are held under their Vorbis-comment names, lower-cased, as MusicBrainz
Picard writes them (https://picard-docs.musicbrainz.org/en/appendices/tag_mapping.html):
besides title, artist, album, album artist, track and disc numbers and totals, date,
genre and comment (:data:`FIELDS`), also composer, lyricist, conductor, lyrics, ISRC,
label, BPM, copyright, compilation, the sort fields, the MusicBrainz IDs
(``musicbrainz_trackid`` is the *recording* ID, as in Picard's Vorbis comments;
``musicbrainz_releasetrackid`` the track's), AcoustID and the rest of Picard's table.
Each format's own names are translated by Picard's mapping (ID3 ``TCOM``, ``USLT``,
``TSRC``, ``UFID:http://musicbrainz.org``, ``TXXX:MusicBrainz Album Id``; MP4
``----:com.apple.iTunes:MusicBrainz Track Id``; ASF ``MusicBrainz/Track Id``, ...), and a
user-defined text tag (ID3 ``TXXX``, an MP4 freeform atom, an unknown Vorbis comment)
is carried under its own name. Every picture is carried with its type, MIME type and
description.

**Deliberately dropped.** Tags that describe the lossy file rather than the music:
ReplayGain and other loudness data (``REPLAYGAIN_*``, ``R128_*``, ``RVA2``, iTunes'
``iTunNORM``): they measured the lossy audio, and a player applying them to the
restored audio would use wrong figures; Picard users recompute ReplayGain after
tagging, and so should users here. They are named in the "not carried" note so that
nothing disappears silently. Encoder facts (encoded-by, encoder and its settings,
gapless and length data, tagging and encoding times) are dropped without a word: they
are not true of the restored file. Tags no output field can hold (ratings, play
counts, private and binary frames, synchronised lyrics, ...) are named in one note:
``not carried: ...``.

Nothing here raises because of a tag: a value that cannot be read or carried is
skipped and described in a warning (one line each), and the restore goes on. The one
exception is an I/O error while saving tags into the output file (a full disk, say),
which is an error of the output, not of a tag; it propagates as :class:`OSError`.
"""

from __future__ import annotations

import base64
import os
import re
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

import mutagen

#: The fields every player shows, by their Vorbis-comment names (the canonical names
#: here). Others are carried too, by the names in the tables below.
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

# ------------------------------------------------------------------------- name tables
# After MusicBrainz Picard 2.x (picard/formats/id3.py, vorbis.py, mp4.py, asf.py) and
# its documented tag mapping, so files restored here read back in Picard, beets,
# foobar2000 and the like as the input did.

#: ID3 text frames and the field each holds. Read: all; written: all but GRP1
#: (iTunes' grouping; TIT1 is written, as Picard does by default).
_ID3_TEXT = {
    "TIT2": "title", "TPE1": "artist", "TALB": "album", "TPE2": "albumartist",
    "TDRC": "date", "TIT1": "grouping", "GRP1": "grouping", "TIT3": "subtitle",
    "TSST": "discsubtitle", "TSRC": "isrc", "TPE3": "conductor", "TPE4": "remixer",
    "TEXT": "lyricist", "TCOM": "composer", "TBPM": "bpm", "TKEY": "key",
    "TLAN": "language", "TMED": "media", "TMOO": "mood", "TCOP": "copyright",
    "TPUB": "label", "TDOR": "originaldate", "TSOA": "albumsort", "TSOP": "artistsort",
    "TSOT": "titlesort", "TOAL": "originalalbum", "TOPE": "originalartist",
    "TCMP": "compilation", "TSOC": "composersort", "TSO2": "albumartistsort",
    "MVNM": "movementname",
}  # fmt: skip
_ID3_TEXT_WRITE = {name: frame for frame, name in _ID3_TEXT.items() if frame != "GRP1"}

#: ID3 URL frames.
_ID3_URL = {"WOAR": "website", "WCOP": "license"}

#: Roles of ID3's involved-people list (TIPL; IPLS in ID3v2.3) that have a field;
#: any other role is a performer's instrument.
_TIPL_ROLES = {"engineer": "engineer", "arranger": "arranger", "producer": "producer",
               "DJ-mix": "djmixer", "mix": "mixer"}  # fmt: skip

#: Descriptions of ID3 TXXX frames and names of MP4 freeform atoms (the same strings in
#: Picard) that stand for a field of another name. Any other description is carried
#: under its own name, lower-cased.
_FREEFORM = {
    "MusicBrainz Track Id": "musicbrainz_trackid",  # MP4: the recording ID, as in Vorbis
    "MusicBrainz Release Track Id": "musicbrainz_releasetrackid",
    "MusicBrainz Artist Id": "musicbrainz_artistid",
    "MusicBrainz Album Id": "musicbrainz_albumid",
    "MusicBrainz Album Artist Id": "musicbrainz_albumartistid",
    "MusicBrainz Release Group Id": "musicbrainz_releasegroupid",
    "MusicBrainz Work Id": "musicbrainz_workid",
    "MusicBrainz Disc Id": "musicbrainz_discid",
    "MusicBrainz TRM Id": "musicbrainz_trmid",
    "MusicBrainz Original Album Id": "musicbrainz_originalalbumid",
    "MusicBrainz Original Artist Id": "musicbrainz_originalartistid",
    "MusicBrainz Album Type": "releasetype",
    "MusicBrainz Album Status": "releasestatus",
    "MusicBrainz Album Release Country": "releasecountry",
    "MusicIP PUID": "musicip_puid",
    "Acoustid Id": "acoustid_id",
    "Acoustid Fingerprint": "acoustid_fingerprint",
    "initialkey": "key",  # MP4
}
#: The TXXX description each such field is written with (ID3 has no recording-ID
#: TXXX: that one is the UFID frame).
_FREEFORM_WRITE = {name: desc for desc, name in _FREEFORM.items()
                   if name not in ("musicbrainz_trackid", "key")}  # fmt: skip
_FREEFORM_WRITE.update({name: name.upper() for name in
                        ("script", "license", "catalognumber", "barcode", "asin", "artists", "work")})  # fmt: skip

#: The owner of the UFID frame that holds the MusicBrainz recording ID.
_MUSICBRAINZ_UFID = "http://musicbrainz.org"

#: Vorbis-comment names that mean a canonical field of another name.
_VORBIS_ALIASES = {
    "album artist": "albumartist",
    "album_artist": "albumartist",
    "totaltracks": "tracktotal",
    "totaldiscs": "disctotal",
    "year": "date",
    "description": "comment",
    "unsyncedlyrics": "lyrics",
    "organization": "label",
    "publisher": "label",
}

#: MP4 atoms holding text, numbers or flags.
_MP4_TEXT = {
    "\xa9nam": "title", "\xa9ART": "artist", "\xa9alb": "album", "aART": "albumartist",
    "\xa9day": "date", "\xa9gen": "genre",  # mutagen turns the numeric 'gnre' atom into this too
    "\xa9cmt": "comment", "\xa9wrt": "composer", "\xa9grp": "grouping", "\xa9lyr": "lyrics",
    "cprt": "copyright", "soal": "albumsort", "soaa": "albumartistsort", "soar": "artistsort",
    "sonm": "titlesort", "soco": "composersort", "sosn": "showsort", "tvsh": "show",
    "purl": "podcasturl", "\xa9mvn": "movementname", "\xa9wrk": "work",
}  # fmt: skip
_MP4_NUMBER = {"tmpo": "bpm", "\xa9mvi": "movement", "\xa9mvc": "movementtotal", "shwm": "showmovement",
               "cpil": "compilation", "pcst": "podcast"}  # fmt: skip

#: ASF (WMA) attributes. "MusicBrainz/..." and "Acoustid/..." names are those of
#: :data:`_FREEFORM` with a '/' for the first space.
_ASF = {
    "Title": "title", "Author": "artist", "WM/AlbumTitle": "album", "WM/AlbumArtist": "albumartist",
    "WM/Year": "date", "WM/Genre": "genre", "Description": "comment", "WM/Composer": "composer",
    "WM/Writer": "lyricist", "WM/Conductor": "conductor", "WM/ModifiedBy": "remixer",
    "WM/Producer": "producer", "WM/ContentGroupDescription": "grouping", "WM/SubTitle": "subtitle",
    "WM/SetSubTitle": "discsubtitle", "WM/BeatsPerMinute": "bpm", "WM/Mood": "mood",
    "WM/InitialKey": "key", "WM/Publisher": "label", "WM/Lyrics": "lyrics", "WM/ISRC": "isrc",
    "WM/Barcode": "barcode", "WM/CatalogNo": "catalognumber", "WM/Media": "media",
    "WM/AuthorURL": "website", "Copyright": "copyright", "WM/Language": "language",
    "WM/ArtistSortOrder": "artistsort", "WM/AlbumArtistSortOrder": "albumartistsort",
    "WM/AlbumSortOrder": "albumsort", "WM/TitleSortOrder": "titlesort",
    "WM/ComposerSortOrder": "composersort", "WM/IsCompilation": "compilation",
    "WM/Script": "script", "WM/Work": "work", "WM/OriginalAlbumTitle": "originalalbum",
    "WM/OriginalArtist": "originalartist", "WM/OriginalReleaseTime": "originaldate",
    "WM/OriginalReleaseYear": "originalyear", "WM/ARTISTS": "artists",
}  # fmt: skip

#: Tags that describe the lossy encode, not the music: dropped without a note
#: (lower-cased names; ID3 frame IDs as they are).
_ENCODER_FACTS = {
    # ID3: encoded by, encoder settings, length, file type, size, encoding and tagging time
    "TENC", "TSSE", "TLEN", "TFLT", "TSIZ", "TDEN", "TDTG",
    # Vorbis comments and TXXX descriptions
    "encoder", "encodedby", "encoded_by", "encoded-by", "encodersettings", "encoder_settings",
    "encoder_options", "encoding", "encodingtime", "software", "waveformatextensible_channel_mask",
    "itunsmpb", "itunpgap", "encoding params", "itunes_cddb_1",
    # MP4 atoms, ASF attributes
    "\xa9too", "\xa9enc", "pgap", "wmfsdkversion", "wmfsdkneeded", "isvbr",
    "deviceconformancetemplate", "wm/toolname", "wm/toolversion", "wm/encodingtime",
    "wm/encodingsettings", "wm/encodedby", "wm/mediaprimaryclassid", "wm/track",
}  # fmt: skip

#: Loudness measurements of the lossy audio (lower-cased names or prefixes): dropped,
#: and named in the note, so the user knows to recompute them.
_LOUDNESS_PREFIXES = (
    "replaygain",
    "r128_",
    "itunnorm",
    "rva2",
    "rvad",
    "mp3gain",
    "peakvalue",
    "averagelevel",
)

_SPACES = re.compile(r"\s+")


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

    ``fields`` maps lower-case Vorbis-comment names (see the module docstring) to their
    values (a list: Vorbis comments, ID3 and MP4 all allow several artists or genres).
    ``not_carried`` names the input's tags that are not carried (loudness data, and
    what no output field can hold). ``warnings`` holds the lines to show the user:
    what could not be read, and one ``not carried: ...`` note.
    """

    fields: dict[str, list[str]] = field(default_factory=dict)
    pictures: list[Picture] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    not_carried: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.pictures)

    def add(self, name: str, values: Iterable[object]) -> None:
        """Append non-empty text values to a field (first source wins for single values)."""
        texts = [str(v).strip("\x00").strip() for v in values]
        texts = [t for t in texts if t]
        if texts:
            self.fields.setdefault(name, []).extend(t for t in texts if t not in self.fields.get(name, []))

    def skip(self, name: str) -> None:
        """Note that the tag ``name`` (its name in the input's format) is not carried."""
        if name not in self.not_carried:
            self.not_carried.append(name)


# ---------------------------------------------------------------------------------- reading


def read_tags(path: str | os.PathLike[str]) -> Tags:
    """The tags and pictures of an audio file; never raises.

    A file whose tags cannot be parsed gives empty tags and a warning; a file without
    tags (or of a kind mutagen does not know) gives empty tags and no warning. Tags
    that are not carried are named in one warning (see :func:`not_carried_note`).
    """
    p = Path(path)
    result = Tags()
    try:
        audio = open_by_content(p)
    except Exception as exc:  # noqa: BLE001 - mutagen raises many kinds on damaged files
        result.warnings.append(
            f"could not read the tags of {p.name} ({_describe(exc)}); restored without them"
        )
        return result
    tags = getattr(audio, "tags", None) if audio is not None else None
    try:
        if tags is not None:
            _read_any(audio, tags, result)
        elif type(audio).__name__ in ("WAVE", "AIFF"):
            _read_riff_info(p, result)
        elif audio is None:
            _read_container(p, result)
    except Exception as exc:  # noqa: BLE001 - a tag layout we did not foresee: keep what was read
        result.warnings.append(
            f"could not read all tags of {p.name} ({_describe(exc)}); some were not carried"
        )
    note = not_carried_note(result.not_carried)
    if note:
        result.warnings.append(note)
    return result


def not_carried_note(names: Iterable[str]) -> str | None:
    """One line naming the tags not carried, loudness data first with what to do about it."""
    names = list(dict.fromkeys(names))
    if not names:
        return None
    loudness = [n for n in names if _is_loudness(n)]
    others = sorted((n for n in names if not _is_loudness(n)), key=str.lower)
    parts = []
    if loudness:
        parts.append(
            f"{', '.join(loudness)} (loudness of the lossy audio; recompute ReplayGain for the restored file)"
        )
    parts.extend(others)
    return "not carried: " + ", ".join(parts)


def _is_loudness(name: str) -> bool:
    base = name.lower().rpartition(":")[2] if name.startswith(("TXXX:", "----:", "COMM:")) else name.lower()
    return base.startswith(_LOUDNESS_PREFIXES) or name.lower().startswith(_LOUDNESS_PREFIXES)


def _is_encoder_fact(name: str) -> bool:
    return name in _ENCODER_FACTS or name.lower() in _ENCODER_FACTS


class _Unnamed:
    """A read-only file that hides its name, so that mutagen judges it by content alone."""

    name = ""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._fileobj = fileobj

    def read(self, size: int = -1) -> bytes:
        return self._fileobj.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fileobj.seek(offset, whence)

    def tell(self) -> int:
        return self._fileobj.tell()


def open_by_content(path: str | os.PathLike[str]) -> mutagen.FileType | None:
    """``mutagen.File(path)``, but the file's kind judged by its content, not its name.

    mutagen scores a file's name as much as its first bytes, so a FLAC file named
    ``.mp3`` is opened as an MP3 and fails, and its tags would be lost although the audio
    decodes (by content). Here mutagen first sees the content alone; only when that
    finds no kind, or the kind it finds fails to load (content it cannot place: an MP3
    without a frame header at its start, a FLAC behind an ID3 tag), is the name
    consulted as well. Returns None for a file that is of no kind mutagen knows. Raises
    what mutagen raises when both ways fail (the content's error: the truer one).
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            found = mutagen.File(_Unnamed(fh))
    except Exception as content_error:  # noqa: BLE001 - mutagen raises many kinds on damaged files
        try:
            return mutagen.File(p)
        except Exception:  # noqa: BLE001
            raise content_error from None
    return found if found is not None else mutagen.File(p)


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
    for frame in tags.values():
        fid = frame.FrameID
        if fid in _ID3_TEXT:
            result.add(_ID3_TEXT[fid], [str(t) for t in frame.text])
        elif fid == "TCON":
            result.add("genre", frame.genres)
        elif fid in ("TRCK", "TPOS"):
            _add_pair(result, "track" if fid == "TRCK" else "disc", [str(t) for t in frame.text])
        elif fid == "MVIN":
            _add_pair(
                result, "movement", [str(t) for t in frame.text], number="movement", total="movementtotal"
            )
        elif fid == "COMM":
            # Only comments without a description: iTunes and others keep machine data
            # (iTunNORM, iTunSMPB, ...) in described COMM frames.
            if not frame.desc:
                result.add("comment", frame.text)
            elif not _is_encoder_fact(frame.desc):
                result.skip(f"COMM:{frame.desc}")
        elif fid == "USLT":
            result.add("lyrics", [frame.text])
        elif fid == "TXXX":
            _read_freeform(frame.desc, [str(t) for t in frame.text], f"TXXX:{frame.desc}", result)
        elif fid == "UFID":
            if frame.owner == _MUSICBRAINZ_UFID:
                result.add("musicbrainz_trackid", [frame.data.decode("utf-8", "replace")])
            else:
                result.skip(f"UFID:{frame.owner}")
        elif fid in ("TIPL", "TMCL", "IPLS"):
            for role, name in frame.people:
                if fid != "TMCL" and role in _TIPL_ROLES:
                    result.add(_TIPL_ROLES[role], [name])
                elif name:
                    result.add("performer", [f"{name} ({role})" if role else name])
        elif fid in _ID3_URL:
            result.add(_ID3_URL[fid], [frame.url])
        elif fid == "APIC":
            mime = _normalise_mime(frame.mime, frame.data)
            if mime == "-->":
                result.warnings.append("a picture that is only a link (APIC '-->') was not carried")
                continue
            result.pictures.append(Picture(bytes(frame.data), mime, int(frame.type), str(frame.desc)))
        elif not _is_encoder_fact(fid):
            detail = getattr(frame, "owner", None) or getattr(frame, "desc", None)  # PRIV, GEOB, WXXX, ...
            what = _ID3_KINDS.get(fid)
            result.skip(f"{fid}:{_printable(detail)}" if isinstance(detail, str) and detail else
                        f"{fid} ({what})" if what else fid)  # fmt: skip


#: What some ID3 frames that no output field holds are, for the note.
_ID3_KINDS = {"POPM": "rating", "PCNT": "play count", "SYLT": "synchronised lyrics", "MCDI": "CD table of contents",
              "ETCO": "event timing", "CHAP": "chapters", "CTOC": "chapters"}  # fmt: skip


def _printable(text: str) -> str:
    """``text`` fit for a one-line note: control characters (a NUL, a newline) shown escaped."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _read_freeform(name: str, values: list[str], native: str, result: Tags) -> None:
    """A user-defined text tag (ID3 TXXX, MP4 freeform, ASF attribute): a field by its name."""
    if _is_loudness(name):
        result.skip(native)
    elif _is_encoder_fact(name):
        pass
    elif name in _FREEFORM:
        result.add(_FREEFORM[name], values)
    elif name.lower() in _VORBIS_ALIASES or name.lower() in ("tracknumber", "discnumber"):
        _read_vorbis([(name, v) for v in values], result)
    elif name.strip() and _valid_name(name):
        result.add(_SPACES.sub(" ", name.strip()).lower(), values)
    else:
        result.skip(native)


def _valid_name(name: str) -> bool:
    """A name a Vorbis comment can hold (printable ASCII without '='): every output can carry it."""
    return all(0x20 <= ord(ch) <= 0x7D and ch != "=" for ch in name)


def _read_vorbis(comments: list[tuple[str, str]], result: Tags) -> None:
    from mutagen.flac import Picture as FlacPicture

    for key, value in comments:
        name = key.lower()
        if name in ("tracknumber", "discnumber"):
            _add_pair(result, name[:-6], [value])
        elif name == "metadata_block_picture":
            try:
                result.pictures.append(_from_flac_picture(FlacPicture(base64.b64decode(value))))
            except Exception as exc:  # noqa: BLE001 - a tag never fails a restore
                result.warnings.append(f"a damaged METADATA_BLOCK_PICTURE was not carried ({_describe(exc)})")
        elif name in ("coverart", "coverartmime"):
            continue  # below
        elif _is_loudness(name):
            result.skip(key.upper())
        elif _is_encoder_fact(name):
            continue
        else:
            result.add(_VORBIS_ALIASES.get(name, name), [value])
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
    from mutagen.mp4 import AtomDataType, MP4Cover

    for atom, values in tags.items():
        if atom in _MP4_TEXT:
            result.add(_MP4_TEXT[atom], values)
        elif atom in _MP4_NUMBER:
            flags = values if isinstance(values, list) else [values]
            result.add(_MP4_NUMBER[atom], [int(v) for v in flags])  # True -> 1, as Picard writes flags
        elif atom in ("trkn", "disk"):
            kind = "track" if atom == "trkn" else "disc"
            for number, total in values[:1]:
                if number:
                    result.add(f"{kind}number", [number])
                if total:
                    result.add(f"{kind}total", [total])
        elif atom == "covr":
            for cover in values:
                data = bytes(cover)
                fmt: int | None = getattr(cover, "imageformat", None)
                mimes: dict[int | None, str] = {
                    MP4Cover.FORMAT_JPEG: "image/jpeg",
                    MP4Cover.FORMAT_PNG: "image/png",
                }
                mime = mimes.get(fmt, "")
                result.pictures.append(Picture(data, _normalise_mime(mime, data), 3, ""))
        elif atom.startswith("----:"):
            name = atom.split(":", 2)[2] if atom.count(":") >= 2 else atom[5:]
            texts = [
                bytes(v).decode("utf-8", "replace")
                for v in values
                if getattr(v, "dataformat", AtomDataType.UTF8) in (AtomDataType.UTF8, AtomDataType.IMPLICIT)
            ]
            if len(texts) == len(values):
                _read_freeform(name, texts, atom, result)
            elif not _is_encoder_fact(name):
                result.skip(atom)  # binary data
        elif not _is_encoder_fact(atom):
            result.skip(atom)


def _read_asf(tags: mutagen.asf.ASFTags, result: Tags) -> None:
    from mutagen.asf import ASFBoolAttribute, ASFByteArrayAttribute, ASFGUIDAttribute

    for name in dict.fromkeys(tags.keys()):
        values = tags[name]
        if name == "WM/Picture":
            for value in values:
                try:
                    result.pictures.append(_parse_wm_picture(bytes(value.value)))
                except Exception as exc:  # noqa: BLE001 - a tag never fails a restore
                    result.warnings.append(f"a damaged WM/Picture was not carried ({_describe(exc)})")
            continue
        binary = any(isinstance(v, (ASFByteArrayAttribute, ASFGUIDAttribute)) for v in values)
        texts = [
            ("1" if v.value else "0") if isinstance(v, ASFBoolAttribute) else str(v.value) for v in values
        ]
        if _is_loudness(name) or _is_loudness(name.rpartition("/")[2]):
            result.skip(name)
        elif _is_encoder_fact(name):
            continue
        elif binary:
            result.skip(name)
        elif name in ("WM/TrackNumber", "WM/PartOfSet"):
            _add_pair(result, "track" if name == "WM/TrackNumber" else "disc", texts)
        elif name in _ASF:
            result.add(_ASF[name], texts)
        elif name.startswith(("MusicBrainz/", "Acoustid/", "MusicIP/")):
            _read_freeform(name.replace("/", " ", 1), texts, name, result)
        else:
            # Other attributes are Windows Media's own (store IDs, ratings, ...); the
            # names of a few that tag-writing tools use freely are not worth guessing.
            result.skip(name)


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


#: ffmpeg's own names for the tags of the containers it reads, where they differ from
#: the Vorbis comments' (its Matroska reader turns ``PART_NUMBER`` into ``track``).
_FFMPEG_NAMES = {"track": "tracknumber", "disc": "discnumber"}


def _read_container(path: Path, result: Tags) -> None:
    """Tags and attached pictures of a container mutagen does not know (Matroska, WebM), through ffprobe.

    Matroska's tags are named as Vorbis comments are (``TITLE``, ``ARTIST``,
    ``REPLAYGAIN_TRACK_GAIN``, ...), so they are read as such. Its pictures are
    attachments; ``cover.jpg`` and its variants are front covers.
    """
    from .ffprobe import attached_picture, probe_audio

    probed = probe_audio(path)
    if probed is None:
        return
    _read_vorbis([(_FFMPEG_NAMES.get(name.lower(), name), value) for name, value in probed.tags], result)
    for picture in probed.pictures:
        data = attached_picture(path, picture.index)
        if data is None:
            result.warnings.append(f"a picture attached to {path.name} could not be read; it was not carried")
            continue
        cover = picture.filename is None or "cover" in picture.filename.lower()
        result.pictures.append(
            Picture(data, _normalise_mime(picture.mime or "", data), 3 if cover else 0, "")
        )


def _read_riff_info(path: Path, result: Tags) -> None:
    """RIFF INFO (WAV) and AIFF text chunks, through libsndfile."""
    import soundfile as sf

    try:
        with sf.SoundFile(path) as f:
            meta = f.copy_metadata()
    except Exception:  # noqa: BLE001
        return  # not readable by libsndfile: decoding will say so
    for key, name in (("title", "title"), ("artist", "artist"), ("album", "album"), ("date", "date"),
                      ("genre", "genre"), ("comment", "comment"), ("copyright", "copyright"),
                      ("license", "license")):  # fmt: skip
        if key in meta:
            result.add(name, [meta[key]])
    if "tracknumber" in meta:
        _add_pair(result, "track", [meta["tracknumber"]])


def _add_pair(
    result: Tags, kind: str, values: list[str], *, number: str | None = None, total: str | None = None
) -> None:
    """``3/12`` -> tracknumber 3, tracktotal 12 (also for discs); non-numeric kept as is (vinyl 'A1')."""
    for value in values[:1]:
        first, _, second = str(value).partition("/")
        result.add(number or f"{kind}number", [first])
        result.add(total or f"{kind}total", [second])


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
        return text or "image/jpeg"
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
    fields = {
        name: [v for v in values if _is_text(v, name, warnings)] for name, values in tags.fields.items()
    }
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


def _write_flac(
    path: Path, fields: dict[str, list[str]], pictures: list[Picture], warnings: list[str]
) -> Callable[[], object]:
    from mutagen.flac import FLAC, VCFLACDict
    from mutagen.flac import Picture as FlacPicture

    audio = FLAC(path)
    if audio.tags is None:
        audio.add_tags()
    # mutagen's annotations leave tags possibly None (or any metadata block); add_tags made it this.
    tags = cast(VCFLACDict, audio.tags)
    for name, values in fields.items():
        if not _valid_name(name):  # read_tags never makes one; a caller's Tags might
            warnings.append(f"the tag name {name!r} cannot be a FLAC (Vorbis comment) name; not carried")
            continue
        tags[name.upper()] = values
    audio.clear_pictures()
    for picture in pictures:
        block = FlacPicture()
        block.data, block.mime, block.type, block.desc = (
            picture.data,
            picture.mime,
            picture.type,
            picture.description,
        )
        if len(block.write()) > _FLAC_BLOCK_LIMIT:
            warnings.append(
                f"a {len(picture.data) / 2**20:.1f} MiB picture is too large for FLAC (16 MiB at most); not carried"
            )
            continue
        audio.add_picture(block)
    return audio.save


def _write_wav(
    path: Path, fields: dict[str, list[str]], pictures: list[Picture], warnings: list[str]
) -> Callable[[], object]:
    from mutagen import id3
    from mutagen.wave import WAVE

    audio = WAVE(path)
    if audio.tags is None:
        audio.add_tags()
    # mutagen declares a WAVE's tags as None; add_tags made them an ID3.
    tags = cast(id3.ID3, audio.tags)
    utf8 = id3.Encoding.UTF8  # mutagen stores it as UTF-16 in ID3v2.3
    people: list[list[str]] = []
    for kind, frame in (("track", id3.TRCK), ("disc", id3.TPOS), ("movement", id3.MVIN)):
        number_name, total_name = (
            (kind, "movementtotal") if kind == "movement" else (f"{kind}number", f"{kind}total")
        )
        number = fields.get(number_name, [""])[0]
        total = fields.get(total_name, [""])[0]
        if number:
            tags.add(frame(encoding=utf8, text=[f"{number}/{total}" if total else number]))
        elif total:
            warnings.append(f"a {kind} total without a {kind} number cannot be stored in ID3; not carried")
    paired = {"tracknumber", "tracktotal", "discnumber", "disctotal", "movement", "movementtotal"}
    for name, values in fields.items():
        if name in paired:
            continue
        if name == "genre":
            tags.add(id3.TCON(encoding=utf8, text=values))
        elif name in _ID3_TEXT_WRITE:
            frame_id = _ID3_TEXT_WRITE[name]
            tags.add(getattr(id3, frame_id)(encoding=utf8, text=values))
        elif name == "comment":
            tags.add(id3.COMM(encoding=utf8, lang="eng", desc="", text=values))
        elif name == "lyrics":
            tags.add(id3.USLT(encoding=utf8, lang="XXX", desc="", text="\n\n".join(values)))
        elif name == "musicbrainz_trackid":  # the recording ID: Picard's UFID frame
            tags.add(id3.UFID(owner=_MUSICBRAINZ_UFID, data=values[0].encode("utf-8")))
        elif name in _TIPL_ROLES.values():
            role = next(r for r, n in _TIPL_ROLES.items() if n == name)
            people.extend([role, v] for v in values)
        elif name == "performer":
            for value in values:  # Vorbis "Name (instrument)"
                match = re.fullmatch(r"(.*?)\s*\(([^()]*)\)", value)
                people.append([match.group(2), match.group(1)] if match else ["", value])
        elif name == "website":
            for value in values:
                tags.add(id3.WOAR(url=value))
        else:
            desc = _FREEFORM_WRITE.get(name, name)
            tags.add(id3.TXXX(encoding=utf8, desc=desc, text=values))
    if people:
        # ID3v2.3's involved-people list holds both TIPL's roles and TMCL's instruments.
        tags.add(id3.IPLS(encoding=utf8, people=people))
    seen: set[tuple[int, str]] = set()
    for picture in pictures:
        # ID3 identifies an APIC frame by its description: give duplicates distinct ones.
        desc = picture.description
        while (picture.type, desc) in seen or any(f.desc == desc for f in tags.getall("APIC")):
            desc += " "
        seen.add((picture.type, desc))
        tags.add(id3.APIC(encoding=utf8, mime=picture.mime, type=picture.type, desc=desc,
                          data=picture.data))  # fmt: skip
    # ID3v2.3: what most WAV-reading software (Windows, DAWs, taggers) understands.
    return lambda: audio.save(v2_version=3)


def finalizer(
    tags: Tags, fmt: str, frames: int, warnings: list[str], provenance: str | None = None
) -> Callable[[Path], None]:
    """A ``finalize`` hook for :func:`apollo_cli.audio.write_audio` that adds ``tags``.

    And the provenance tag, with the value ``provenance`` (default: just the version).

    It writes the tags into the finished temporary file, appends their warnings to
    ``warnings``, and then checks that the file still reads as ``frames`` frames of
    audio, so a tagging mishap can never leave a damaged output behind (the write
    fails instead, and the temporary file is removed).
    """

    def finalize(path: Path) -> None:
        if tags:
            warnings.extend(write_tags(path, tags, fmt))
        # Every output says it is apollo's, so a later run can tell it from an original.
        _write_provenance(path, fmt, provenance or provenance_value())
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


__all__ = [
    "FIELDS",
    "Picture",
    "Tags",
    "finalizer",
    "not_carried_note",
    "open_by_content",
    "read_tags",
    "write_tags",
]


# ------------------------------------------------------------------------------- provenance

#: The tag that marks a file as written by apollo-cli: a Vorbis comment in FLAC, an ID3
#: ``TXXX`` frame with this description in WAV. Its value starts ``apollo-cli <version>``
#: and goes on with the model and settings (see :mod:`apollo_cli.provenance`).
PROVENANCE_KEY = "APOLLO_RESTORED"


# A restored input's marker describes how that file was made, not the music: like an
# encoder's tag, it is not carried (the output gets its own).
_ENCODER_FACTS.add(PROVENANCE_KEY.lower())


def provenance_value() -> str:
    """The shortest provenance value this version writes (no model or settings known)."""
    from . import __version__

    return f"apollo-cli {__version__}"


def _write_provenance(path: Path, fmt: str, value: str) -> None:
    """Mark ``path`` (FLAC or WAV) as apollo-cli's output; I/O errors raise :class:`OSError`."""
    try:
        if fmt == "FLAC":
            from mutagen.flac import FLAC, VCFLACDict

            flac = FLAC(path)
            if flac.tags is None:
                flac.add_tags()
            cast(VCFLACDict, flac.tags)[PROVENANCE_KEY] = [value]  # as in _write_flac
            flac.save()
        elif fmt == "WAV":
            from mutagen import id3
            from mutagen.wave import WAVE

            wave = WAVE(path)
            if wave.tags is None:
                wave.add_tags()
            cast(id3.ID3, wave.tags).setall(f"TXXX:{PROVENANCE_KEY}", [
                id3.TXXX(encoding=id3.Encoding.UTF8, desc=PROVENANCE_KEY, text=[value])
            ])  # fmt: skip
            wave.save(v2_version=3)
    except Exception as exc:  # as write_tags: only I/O errors are errors of the output
        causes = [exc, *exc.args[:1], exc.__context__, exc.__cause__]
        cause = next((c for c in causes if isinstance(c, OSError)), None)
        if cause is not None:
            raise OSError(cause.errno, f"cannot save tags: {cause.strerror or cause}") from exc
        # Otherwise the output simply has no marker: the safe side, as an unmarked file
        # is never taken for apollo's own (and so never replaced where that matters).


def has_provenance(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` carries apollo-cli's provenance tag (any version); never raises."""
    return read_provenance(path) is not None


def read_provenance(path: str | os.PathLike[str]) -> str | None:
    """The value of ``path``'s apollo-cli provenance tag, or ``None`` (also if unreadable); never raises."""
    try:
        audio = mutagen.File(Path(path))
        found = getattr(audio, "tags", None) if audio is not None else None
        if found is None:
            return None
        from mutagen._vorbis import VCommentDict
        from mutagen.id3 import ID3

        if isinstance(found, VCommentDict):
            values = found.get(PROVENANCE_KEY, [])
        elif isinstance(found, ID3):
            values = [str(t) for frame in found.getall(f"TXXX:{PROVENANCE_KEY}") for t in frame.text]
        else:
            return None
        return next((str(v) for v in values if str(v).startswith("apollo-cli")), None)
    except Exception:  # noqa: BLE001 - unreadable or damaged: not provably ours
        return None


__all__ += ["PROVENANCE_KEY", "has_provenance", "provenance_value", "read_provenance"]
